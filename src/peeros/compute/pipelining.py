"""Pipelining, the part of the scheduler that hands tasks to busy workers ahead of time.

Under FCFS a worker that replies would otherwise idle while the peer's event loop sends
it the next task; instead the dispatcher hands each busy worker up to ``pipeline`` next
tasks of the same owner (more when its tasks are known to be short: :func:`depth`),
which wait in its pipe (:mod:`peeros.compute.worker_handle`).
A handed job has an execution but no slot (``job.behind`` is the job ahead of it); it
takes its predecessor's slot when that one ends (:func:`promote`), and comes
back to the ready queue if it never started (:func:`unstarted`: revoked, or
its worker died). See docs/os-mechanisms.md, "Pipelining".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from peeros.compute.jobs import Job

if TYPE_CHECKING:
    from peeros.compute.scheduler import Scheduler


#: Short tasks are handed ahead deeper: a worker may hold about this much expected work
#: (seconds) queued behind its current task, in up to MAX_DEPTH tasks.
HANDOVER_BUDGET = 0.004
MAX_DEPTH = 8


def depth(s: Scheduler, job: Job) -> int:
    """How many tasks a busy worker may hold ahead when ``job`` is the next to hand over:
    ``pipeline``, or for a task known to be short (declared ``expected_time``, else the
    run time learned for its program + function) enough to cover HANDOVER_BUDGET of
    work, at most MAX_DEPTH. A task of unknown length gets ``pipeline``: handing it deep
    could leave many tasks waiting behind a long one."""
    expected = job.expected if job.expected is not None else s._bursts.get(job.burst_key)
    if expected is None or s.pipeline <= 0:
        return s.pipeline
    return max(s.pipeline, min(MAX_DEPTH, int(HANDOVER_BUDGET / max(expected, 1e-6))))


def prefetch(s: Scheduler) -> None:
    """Pipelining: with every slot busy, hand the best ready jobs to the busy workers
    of their owner ahead of time (up to :func:`depth` each), so a worker starts its
    next task without waiting for this peer. Only under FCFS, whose order a later
    arrival can never change (under SJF or priority a later, better task must still
    overtake a waiting one), and only the queue's head, so the order holds.

    A worker is refilled only once it is down to half its depth, and then to the full
    depth: the tasks handed to it at once go out in one write (``WorkerPool.enqueue``
    buffers them until the dispatch ends), which the worker reads in one go."""
    if s.pipeline <= 0 or s.policy_name != "fcfs":
        return
    filling: set[str] = set()
    while (best := s.ready.peek()) is not None and best.execution is None:
        most = depth(s, best)
        holders = [
            j
            for j in s.running.values()
            if j.execution is not None
            and not j.blocked
            and j.spec.owner == best.spec.owner
            and len(j.queued) < most
            and (len(j.queued) <= most // 2 or j.task_id in filling)
        ]
        if not holders or not s._acceptable(best, s._started() < s.max_started):
            return
        holder = min(holders, key=lambda j: len(j.queued))
        assert holder.execution is not None
        execution = s.pool.enqueue(holder.execution, best.spec)
        if execution is None:
            return
        s._dequeue(best)
        s._n_started += 1
        filling.add(holder.task_id)
        best.execution, best.behind = execution, holder
        holder.queued.append(best)
        s._watch(best, execution)


def promote(s: Scheduler, job: Job, slot: int | None) -> None:
    """``job`` ended. If its worker went on to the first task queued behind it, that one
    takes over the slot (or, had ``job`` no slot — paused under a preemptive policy as it
    replied — is paused at once and waits in the ready queue like any preempted job); the
    rest now wait behind it. If the worker died instead, the queued tasks come back
    unstarted (:func:`unstarted`) and only the links are undone here."""
    nxt, *rest = job.queued
    job.queued = []
    if nxt.execution is None or not nxt.execution.started:
        for j in (nxt, *rest):
            j.behind = None
        return
    nxt.behind, nxt.queued = None, rest
    for j in rest:
        j.behind = nxt
    if slot is not None and slot not in s.running:
        s._occupy(nxt, slot)
        s._arm(nxt)
    else:
        nxt.execution.pause()
        nxt.enqueued = s.clock()
        s._enqueue(nxt)


def revoke_all(s: Scheduler) -> None:
    """Take back every handed task (the policy is no longer FCFS: the order they were
    handed in is not the new policy's)."""
    for holder in s.running.values():
        for job in holder.queued:
            if job.execution is not None:
                job.execution.revoke()


def unstarted(s: Scheduler, job: Job) -> None:
    """A job queued on a worker came back unrun (revoked, or the worker died)."""
    detach(job)
    if job.slot is not None:
        s._end_stint(job, ran=False)
    job.execution = None
    job.first_start = None
    s._n_started -= 1
    if job.kill_status is not None:
        s._finish(job, job.kill_status, None, "cancelled before it started")
    else:
        s._enqueue(job)
        s._state(job, "READY")


def detach(job: Job) -> None:
    if job.behind is not None:
        if job in job.behind.queued:
            job.behind.queued.remove(job)
        job.behind = None
