"""The live CPU scheduler of a peer: kernel policies driving real worker processes.

The *decisions* come from :mod:`peeros.kernel.scheduling` (the same code the simulator
runs); this module only applies them to processes. All state changes happen in one
coroutine, the dispatcher: completions, timers and requests post events and kick it, so
there are no races between "a task finished" and "start the next one" (what each event
does is in :mod:`peeros.compute.sched_events`). Two shortcuts take the dispatcher's
place when it is idle and would do just that: a lone task is started where it is
submitted (:meth:`Scheduler._start_now`), and a task's end is settled where it is
reported (:meth:`Scheduler._post_now`); a remote task's round trip is two turns of the
event loop shorter.

Preemption is real: a preempted task's whole sandbox is stopped with SIGSTOP and later
resumed with SIGCONT on the same worker (Silberschatz §5.3.3; NOTES: 50 ms quanta keep
~97 % of throughput). Time spent paused does not count against a task's timeout.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from peeros.compute.jobs import Hooks, Job, JobResult, Status, policy_view
from peeros.compute.pipelining import prefetch
from peeros.compute.readyqueue import ReadyQueue
from peeros.compute.sched_events import DEFAULT_BURST, HANDLERS
from peeros.compute.sched_view import snapshot
from peeros.compute.workers import Execution, TaskOutcome, WorkerPool
from peeros.eager import EagerFuture
from peeros.errors import BadRequest, PeerOSError
from peeros.kernel.scheduling import Policy, SchedulingError, Task, make_policy

log = logging.getLogger(__name__)

GANTT_KEEP = 500


class Scheduler:
    def __init__(
        self,
        pool: WorkerPool,
        slots: int,
        policy: str = "fcfs",
        quantum: float = 0.1,
        aging: float = 0.5,
        max_started: int = 16,
        clock: Callable[[], float] = time.monotonic,
        pipeline: int = 2,
    ) -> None:
        self.pool = pool
        self.slots = slots
        #: Tasks handed to a busy worker ahead of time (non-preemptive policies only).
        self.pipeline = pipeline
        self.clock = clock
        self.max_started = max(max_started, slots)
        self.quantum = quantum
        self.aging = aging
        self.policy_name = policy
        self.policy: Policy = make_policy(policy, quantum=quantum, aging=aging)
        self.ready = ReadyQueue(self._static_key)
        #: Jobs holding a worker (running, paused or blocked): bounded by max_started.
        self._n_started = 0
        self.running: dict[int, Job] = {}
        self.jobs: dict[str, Job] = {}
        self._events: deque[tuple[str, Any]] = deque()
        #: Events are being handled (by the dispatcher, or at once by _post_now).
        self._dispatching = False
        self._kick = asyncio.Event()
        self._tickets = itertools.count(1)
        self._orders = itertools.count()
        self._bursts: dict[str, float] = {}
        self._tg: asyncio.TaskGroup | None = None
        self.gantt: deque[tuple[str, float, float, int]] = deque(maxlen=GANTT_KEEP)
        self.completed = 0
        self._sum_wait = 0.0
        self._sum_turnaround = 0.0
        self._first_submit: float | None = None
        self._last_finish: float | None = None
        self._wall_offset = time.time() - clock()
        self.hooks: Hooks | None = None

    # --- requests (any coroutine) ------------------------------------------------------

    def submit(self, job: Job) -> EagerFuture[JobResult]:
        now = self.clock()
        job.order = next(self._orders)
        job.submitted = job.enqueued = now
        job.ticket = next(self._tickets)
        self.jobs[job.task_id] = job
        if self._first_submit is None:
            self._first_submit = now
        self._state(job, "NEW")
        if not self._start_now(job):
            self._post("submit", job)
        return job.future

    def _start_now(self, job: Job) -> bool:
        """Start ``job`` on an idle worker right here when the dispatcher would do nothing
        else (it is idle, nothing is ready or pending, a slot is free): what it would do
        one turn of the event loop later, for the common case of a lone task."""
        if self._dispatching or self._events or self.ready or self._tg is None:
            return False
        slot = self._free_slot()
        if slot is None or not self.pool.can_start_now(job.spec.owner):
            return False
        if not self._acceptable(job, self._started() < self.max_started):
            return False
        execution = self.pool.start_now(job.spec)
        if execution is None:
            return False
        self._state(job, "READY")
        self._occupy(job, slot)
        job.execution = execution
        self._n_started += 1
        self._watch(job, execution)
        self._arm(job)
        return True

    def block(self, task_id: str, waiting_on: str) -> None:
        """The job entered a blocking system call: RUNNING → WAITING, its slot is freed."""
        job = self.jobs.get(task_id)
        if job is not None:
            self._post("block", (job, waiting_on))

    def wake(self, task_id: str) -> asyncio.Future[None]:
        """WAITING → READY; the future completes when the job is dispatched again."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        job = self.jobs.get(task_id)
        if job is None:
            fut.set_result(None)
        else:
            self._post("wake", (job, fut))
        return fut

    def kick(self) -> None:
        """Resources came back: try the jobs that were held back again (the dispatcher
        re-asks admission of held jobs at every fill; nothing to re-order)."""
        self._post("retry", None)

    def _state(self, job: Job, state: str) -> None:
        if self.hooks is not None:
            self.hooks.on_state(job, state)

    def cancel(self, task_id: str) -> bool:
        if task_id not in self.jobs:
            return False
        self._post("cancel", task_id)
        return True

    def set_policy(
        self, name: str, quantum_ms: float | None = None, aging: float | None = None
    ) -> None:
        quantum = quantum_ms / 1000 if quantum_ms is not None else self.quantum
        if quantum <= 0:
            raise BadRequest(f"quantum must be > 0 ms, got {quantum_ms}")
        try:
            policy = make_policy(
                name, quantum=quantum, aging=self.aging if aging is None else aging
            )
        except SchedulingError as exc:
            raise BadRequest(str(exc)) from exc
        self.policy, self.policy_name, self.quantum = policy, name, quantum
        if aging is not None:
            self.aging = aging
        self._post("policy", None)

    def counts(self) -> tuple[int, int]:
        """(queued, running) for heartbeats."""
        handed = sum(len(j.queued) for j in self.running.values())
        return len(self.ready) + handed, len(self.running)

    # --- the dispatcher ----------------------------------------------------------------

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            try:
                while True:
                    await self._kick.wait()
                    self._kick.clear()
                    try:
                        await self._dispatch()
                    except Exception:  # one bad event must not take the peer down
                        log.exception("scheduler: error while dispatching; going on")
            finally:
                self._tg = None  # stopped: no more starts or ends handled on the spot
                for job in list(self.jobs.values()):
                    if job.execution is not None:
                        job.execution.kill("peer shutting down")
                    if not job.future.done():
                        job.future.set_exception(PeerOSError("peer shut down before the task ran"))

    def _post(self, kind: str, item: Any) -> None:
        self._events.append((kind, item))
        self._kick.set()

    def _post_now(self, kind: str, item: Any) -> None:
        """Handle the event at once if the dispatcher is idle with nothing pending (it
        would handle just this one); it is kicked only if a job became ready."""
        if self._dispatching or self._events or self._tg is None:
            self._post(kind, item)
            return
        self._dispatching = True
        try:
            HANDLERS[kind](self, item)
        except Exception:  # one bad event must not take the peer down
            log.exception("scheduler: error while handling %s; going on", kind)
        finally:
            self._dispatching = False
        if self.ready or self._events:
            self._kick.set()

    async def _dispatch(self) -> None:
        self._dispatching = True
        try:
            while self._events:
                kind, item = self._events.popleft()
                HANDLERS[kind](self, item)
            await self._preempt()
            await self._fill()
        finally:
            self._dispatching = False

    # --- mechanics ---------------------------------------------------------------------

    def _view(self, job: Job, now: float) -> Task:
        return policy_view(job, self._bursts.get(job.burst_key, DEFAULT_BURST))

    def _started(self) -> int:
        """Jobs holding a worker (running, paused, blocked), bounded by ``max_started``.
        Jobs handed to a busy worker ahead of time hold none of their own (pipelining)."""
        return self._n_started - sum(len(j.queued) for j in self.running.values())

    def _free_slot(self) -> int | None:
        return next((s for s in range(self.slots) if s not in self.running), None)

    def _static_key(self, job: Job) -> Any:
        return self.policy.static_key(self._view(job, self.clock()))

    def _enqueue(self, job: Job) -> None:
        self.ready.push(job)

    def _dequeue(self, job: Job) -> None:
        self.ready.remove(job)

    async def _preempt(self) -> None:
        if not self.policy.preemptive or not self.ready or self._free_slot() is not None:
            return
        best = self.ready.peek()
        if best is None:
            return
        now = self.clock()
        worst = max(self.running.values(), key=lambda j: self.policy.key(self._view(j, now), now))
        if self.policy.should_preempt(self._view(worst, now), self._view(best, now), now):
            if best.execution is None and self._started() >= self.max_started:
                return
            self._pause(worst)

    async def _fill(self) -> None:
        while self.ready:
            slot = self._free_slot()
            if slot is None:
                prefetch(self)
                return
            job = self._next_admissible()
            if job is None:
                return
            self._dequeue(job)
            await self._start(job, slot)

    def _acceptable(self, job: Job, room: bool) -> bool:
        if job.execution is not None or job.admitted:
            return True
        if not room:
            return False
        job.held_reason = self.hooks.admit(job) if self.hooks is not None else None
        job.admitted = job.held_reason is None
        return job.admitted

    def _next_admissible(self) -> Job | None:
        """The best ready job, by the policy, that may run now: a job that has not
        started yet must be admitted (worker room, memory, a safe Banker's state). Jobs
        held back keep their place in the queue."""
        room = self._started() < self.max_started
        return self.ready.first(lambda job: self._acceptable(job, room))

    def _occupy(self, job: Job, slot: int) -> None:
        now = self.clock()
        job.slot = slot
        self.running[slot] = job
        job.stint += 1
        job.stint_start = now
        if job.first_start is None:
            job.first_start = now
        self._state(job, "RUNNING")

    def _arm(self, job: Job) -> None:
        job.timer = asyncio.get_running_loop().call_later(
            max(job.timeout - job.used, 0.0), self._post, "timeout", (job, job.stint)
        )
        self._arm_quantum(job)

    async def _start(self, job: Job, slot: int) -> None:
        self._occupy(job, slot)
        if job.execution is None:
            try:
                job.execution = await self.pool.execute(job.spec)
                self._n_started += 1
            except PeerOSError as exc:
                self._end_stint(job)
                self._finish(job, "FAILED", None, f"could not start a worker: {exc}")
                return
            self._watch(job, job.execution)
        elif job.wake is not None:
            job.wake.set_result(None)  # return from the system call that blocked it
            job.wake = None
        else:
            job.execution.resume()
        self._arm(job)

    def _arm_quantum(self, job: Job) -> None:
        if job.qtimer is not None:
            job.qtimer.cancel()
            job.qtimer = None
        if self.policy.quantum is not None and job.slot is not None:
            job.qtimer = asyncio.get_running_loop().call_later(
                float(self.policy.quantum), self._post, "quantum", (job, job.stint)
            )

    def _end_stint(self, job: Job, ran: bool = True) -> None:
        now = self.clock()
        if job.stint_start is not None and job.slot is not None:
            del self.running[job.slot]
        if ran and job.stint_start is not None and job.slot is not None:
            job.used += now - job.stint_start
            self.gantt.append(
                (
                    job.task_id,
                    job.stint_start + self._wall_offset,
                    now + self._wall_offset,
                    job.slot,
                )
            )
        for timer in (job.timer, job.qtimer):
            if timer is not None:
                timer.cancel()
        job.timer = job.qtimer = None
        job.slot = None
        job.stint_start = None
        job.stint += 1  # stale timers of the old stint now do nothing

    def _pause(self, job: Job) -> None:
        assert job.execution is not None
        job.execution.pause()
        self._end_stint(job)
        job.enqueued = self.clock()
        job.ticket = next(self._tickets)
        self._enqueue(job)
        self._state(job, "READY")

    def _watch(self, job: Job, execution: Execution) -> None:
        execution.on_done(lambda outcome: self._post_now("done", (job, outcome)))

    def _finish(
        self, job: Job, status: Status, outcome: TaskOutcome | None, error: str | None
    ) -> None:
        now = self.clock()
        self.jobs.pop(job.task_id, None)
        if job.execution is not None:
            self._n_started -= 1
        job.execution = None
        if job.wake is not None and not job.wake.done():
            job.wake.cancel()
        result = JobResult.of(job, status, outcome, error, now, self._wall_offset)
        self.completed += 1
        self._sum_wait += result.waiting_time
        self._sum_turnaround += result.turnaround_time
        self._last_finish = now
        if not job.future.done():  # its listeners answer first: the kernel's work follows
            job.future.set_result(result)
        if self.hooks is not None:
            self.hooks.on_finish(job, status)

    def snapshot(self) -> dict[str, Any]:
        """Policy, queue, running, blocked, averages and the Gantt record."""
        return snapshot(self)
