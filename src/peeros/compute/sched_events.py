"""What each scheduler event does: the dispatcher (:class:`~peeros.compute.scheduler.Scheduler`)
takes events in the order they were posted and hands each to its function here.

A job's life in events: ``submit`` (queued READY), ``block``/``wake`` around a blocking
system call, ``quantum`` (round robin: paused if another job is ready), ``timeout`` and
``cancel`` (killed), ``done`` (its worker replied, or died). ``policy`` and ``retry`` only
make the next fill look again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from peeros.compute.jobs import Job, Status
from peeros.compute.pipelining import detach, promote, revoke_all, unstarted
from peeros.compute.workers import TaskOutcome
from peeros.kernel.scheduling import exponential_average

if TYPE_CHECKING:
    from peeros.compute.scheduler import Scheduler

#: Burst assumed for a program + function never seen before (seconds).
DEFAULT_BURST = 1.0


def on_submit(s: Scheduler, job: Job) -> None:
    s._enqueue(job)
    s._state(job, "READY")


def on_block(s: Scheduler, item: tuple[Job, str]) -> None:
    job, waiting_on = item
    if job.execution is None or job.blocked or job.task_id not in s.jobs:
        return
    if job.slot is not None:
        s._end_stint(job)
    elif job.task_id in s.ready:
        # Preempted while its blocking call was on the way: it sleeps in the call,
        # not on SIGSTOP. It was running when it called, so it goes on from there.
        s._dequeue(job)
        job.execution.resume()
        s._state(job, "RUNNING")
    for queued in job.queued:  # they would wait for the whole call: take them back
        if queued.execution is not None:
            queued.execution.revoke()
    job.blocked, job.waiting_on = True, waiting_on
    s._state(job, "WAITING")


def on_wake(s: Scheduler, item: tuple[Job, asyncio.Future[None]]) -> None:
    job, fut = item
    if not job.blocked or job.task_id not in s.jobs:
        if not fut.done():
            fut.set_result(None)
        return
    job.blocked, job.waiting_on, job.wake = False, None, fut
    job.enqueued = s.clock()
    job.ticket = next(s._tickets)
    s._enqueue(job)
    s._state(job, "READY")


def on_retry(s: Scheduler, _: None) -> None:
    pass  # the fill that follows every batch of events re-checks held jobs


def on_policy(s: Scheduler, _: None) -> None:
    s.ready.rekey(s._static_key)  # the order is the new policy's
    if s.policy_name != "fcfs":
        revoke_all(s)
    for job in s.running.values():  # restart round-robin slices under the new policy
        s._arm_quantum(job)


def on_cancel(s: Scheduler, task_id: str) -> None:
    job = s.jobs.get(task_id)
    if job is None:
        return
    if job.execution is None:
        s._dequeue(job)
        s._finish(job, "CANCELLED", None, "cancelled before it started")
    else:
        job.kill_status = "CANCELLED"
        job.execution.kill("cancelled")


def on_timeout(s: Scheduler, item: tuple[Job, int]) -> None:
    job, stint = item
    if job.stint == stint and job.slot is not None and job.execution is not None:
        job.kill_status = "TIMED_OUT"
        job.execution.kill(f"timed out after {job.timeout:g}s")


def on_quantum(s: Scheduler, item: tuple[Job, int]) -> None:
    job, stint = item
    if job.stint != stint or job.slot is None:
        return
    if s.ready and s._started() <= s.max_started:
        s._pause(job)
    else:
        s._arm_quantum(job)


def on_done(s: Scheduler, item: tuple[Job, TaskOutcome]) -> None:
    job, outcome = item
    if s.jobs.get(job.task_id) is not job:
        return
    if not outcome.started:
        unstarted(s, job)
        return
    detach(job)
    slot = job.slot
    if job.slot is not None:
        s._end_stint(job)
    elif job.task_id in s.ready:
        s._dequeue(job)
    if job.queued:  # its worker has already moved on to the next one
        promote(s, job, slot)
    job.blocked = False
    if outcome.status == "ok":
        status: Status = "DONE"
        if job.expected is None:
            prev = s._bursts.get(job.burst_key, DEFAULT_BURST)
            s._bursts[job.burst_key] = exponential_average(prev, job.used)
    elif outcome.status == "killed":
        status = job.kill_status or "FAILED"
    else:
        status = "FAILED"
    s._finish(job, status, outcome, outcome.error)


#: The function for each kind of event.
HANDLERS: dict[str, Callable[[Scheduler, Any], None]] = {
    "submit": on_submit,
    "block": on_block,
    "wake": on_wake,
    "retry": on_retry,
    "policy": on_policy,
    "cancel": on_cancel,
    "timeout": on_timeout,
    "quantum": on_quantum,
    "done": on_done,
}
