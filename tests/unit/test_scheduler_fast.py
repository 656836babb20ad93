"""The scheduler's fast paths for a lone task: started where it is submitted, and its end
settled where it is reported, without a turn of the dispatcher — yet with the same state
moves, and only when the dispatcher would have done nothing else."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from peeros.compute.jobs import Job
from peeros.compute.scheduler import Scheduler
from peeros.compute.workers import TaskOutcome, TaskSpec
from tests.unit.test_scheduler_races import Recorder


class Execution:
    """Tells of its end at once, as the real one does."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self.callbacks: list[Any] = []

    def on_done(self, callback: Any) -> None:
        self.callbacks.append(callback)

    def end(self, outcome: TaskOutcome) -> None:
        for callback in self.callbacks:
            callback(outcome)

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def kill(self, reason: str = "killed") -> None:
        self.end(TaskOutcome(status="killed", error=reason))


class Pool:
    """``idle`` workers free for ``start_now``; ``execute`` always works."""

    def __init__(self, idle: int) -> None:
        self.idle = idle
        self.started_now: list[str] = []
        self.executions: dict[str, Execution] = {}

    def can_start_now(self, owner: str) -> bool:
        return self.idle > 0

    def start_now(self, spec: TaskSpec) -> Execution | None:
        if self.idle <= 0:
            return None
        self.idle -= 1
        self.started_now.append(spec.task_id)
        return self.executions.setdefault(spec.task_id, Execution(spec.task_id))

    async def execute(self, spec: TaskSpec) -> Execution:
        return self.executions.setdefault(spec.task_id, Execution(spec.task_id))

    def enqueue(self, behind: Any, spec: TaskSpec) -> Any:
        return None


def job(n: int) -> Job:
    tid = f"{n:032d}"
    return Job(task_id=tid, spec=TaskSpec(task_id=tid, owner="o", program="x", function="f"))


@contextlib.asynccontextmanager
async def running(scheduler: Scheduler) -> AsyncIterator[None]:
    """The scheduler's dispatcher up (and idle) for the block; stopped after it."""
    runner = asyncio.create_task(scheduler.run())
    try:
        while scheduler._tg is None:
            await asyncio.sleep(0)
        yield
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_a_lone_task_starts_and_ends_without_the_dispatcher() -> None:
    pool = Pool(idle=1)
    scheduler = Scheduler(pool, slots=2)  # type: ignore[arg-type]
    scheduler.hooks = hooks = Recorder()
    async with running(scheduler):
        a = job(1)
        future = scheduler.submit(a)
        # no await in between: it is running already, with every state move recorded
        assert pool.started_now == [a.task_id] and a.slot is not None
        assert hooks.states[a.task_id] == ["NEW", "READY", "RUNNING"]
        assert scheduler.counts() == (0, 1)
        pool.executions[a.task_id].end(TaskOutcome(status="ok", result=3))
        assert future.done() and future.result().status == "DONE"  # settled at once
        assert hooks.states[a.task_id][-1] == "DONE" and scheduler.counts() == (0, 0)
        assert not scheduler._events


async def test_no_fast_start_past_a_ready_queue_or_without_an_idle_worker() -> None:
    pool = Pool(idle=1)
    scheduler = Scheduler(pool, slots=1)  # type: ignore[arg-type]
    scheduler.hooks = hooks = Recorder()
    async with running(scheduler):
        a, b, c = job(1), job(2), job(3)
        fa = scheduler.submit(a)  # started at once
        fb = scheduler.submit(b)  # no free slot: queued by the dispatcher
        fc = scheduler.submit(c)  # an event is pending: never ahead of it
        assert pool.started_now == [a.task_id]
        for _ in range(20):
            await asyncio.sleep(0)
        assert hooks.states[b.task_id][-1] == "READY" and hooks.states[c.task_id][-1] == "READY"
        pool.executions[a.task_id].end(TaskOutcome(status="ok", result=1))
        assert fa.done()
        for _ in range(20):  # a job is ready: the dispatcher starts it (FCFS: b first)
            await asyncio.sleep(0)
        assert hooks.states[b.task_id][-1] == "RUNNING" and hooks.states[c.task_id][-1] == "READY"
        pool.executions[b.task_id].end(TaskOutcome(status="ok", result=2))
        for _ in range(20):
            await asyncio.sleep(0)
        pool.executions[c.task_id].end(TaskOutcome(status="ok", result=3))
        assert [(await f).status for f in (fa, fb, fc)] == ["DONE"] * 3


async def test_an_end_reported_while_the_dispatcher_works_waits_for_it() -> None:
    pool = Pool(idle=1)
    scheduler = Scheduler(pool, slots=2)  # type: ignore[arg-type]
    scheduler.hooks = Recorder()
    async with running(scheduler):
        a = job(1)
        future = scheduler.submit(a)
        scheduler._dispatching = True  # as if the dispatcher were mid-way through a dispatch
        pool.executions[a.task_id].end(TaskOutcome(status="ok", result=1))
        assert not future.done() and scheduler._events  # posted, not handled re-entrantly
        scheduler._dispatching = False
        assert (await asyncio.wait_for(future, 5)).status == "DONE"


async def test_a_task_no_worker_can_take_fails_cleanly_through_the_dispatcher() -> None:
    """Regression (review): admitted for a fast start, then refused by the pool (args a
    worker cannot be handed), the job leaked — stuck in ``jobs``, its admission held."""
    from peeros.errors import BadRequest

    class Refusing(Pool):
        def start_now(self, spec: TaskSpec) -> Execution | None:
            return None  # as WorkerPool.start_now when encode_task refuses the spec

        async def execute(self, spec: TaskSpec) -> Execution:
            raise BadRequest("args must be JSON: NaN and Infinity are not")

    pool = Refusing(idle=1)
    scheduler = Scheduler(pool, slots=1)  # type: ignore[arg-type]
    scheduler.hooks = hooks = Recorder()
    async with running(scheduler):
        a = job(1)
        result = await asyncio.wait_for(scheduler.submit(a), 5)
        assert result.status == "FAILED" and "NaN" in (result.error or "")
        assert a.task_id not in scheduler.jobs and hooks.states[a.task_id][-1] == "FAILED"
        assert scheduler.counts() == (0, 0) and scheduler._n_started == 0


async def test_a_stopped_scheduler_starts_nothing_on_the_spot() -> None:
    pool = Pool(idle=2)
    scheduler = Scheduler(pool, slots=2)  # type: ignore[arg-type]
    scheduler.hooks = Recorder()
    async with running(scheduler):
        pass  # up, then stopped
    scheduler.submit(job(1))
    assert pool.started_now == []


async def test_a_result_s_listeners_come_before_the_kernel_s_end_of_task_work() -> None:
    """A listener of a job's result (a reply to write) is told before the kernel's
    end-of-task work: that work then overlaps with the caller's next step."""
    pool = Pool(idle=1)
    scheduler = Scheduler(pool, slots=1)  # type: ignore[arg-type]
    seen: list[tuple[str, str]] = []

    class Watching(Recorder):
        def on_finish(self, job: Job, status: str) -> None:
            seen.append(("on_finish", status))
            super().on_finish(job, status)

    scheduler.hooks = hooks = Watching()
    async with running(scheduler):
        a = job(1)
        future = scheduler.submit(a)
        future.listen(lambda f: seen.append(("listener", f.result().status)))
        assert hooks.states[a.task_id] == ["NEW", "READY", "RUNNING"]
        pool.executions[a.task_id].end(TaskOutcome(status="ok", result=3))
        assert seen == [("listener", "DONE"), ("on_finish", "DONE")]
