"""Races between the scheduler's events, driven deterministically with a stand-in pool.

Regression: a task's round-robin quantum expired (it was preempted to READY) while its
blocking system call was on the way; the block then found it READY, and READY → WAITING
is not a legal move, which crashed the dispatcher.
"""

from __future__ import annotations

import asyncio
from typing import Any

from peeros.compute.jobs import Job
from peeros.compute.scheduler import Scheduler
from peeros.compute.workers import TaskOutcome, TaskSpec


class StandInExecution:
    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self.signals: list[str] = []
        self.done: asyncio.Future[TaskOutcome] = asyncio.get_running_loop().create_future()

    def pause(self) -> None:
        self.signals.append("STOP")

    def resume(self) -> None:
        self.signals.append("CONT")

    def kill(self, reason: str = "killed") -> None:
        if not self.done.done():
            self.done.set_result(TaskOutcome(status="killed", error=reason))

    async def wait(self) -> TaskOutcome:
        return await self.done

    def on_done(self, callback: Any) -> None:
        self.done.add_done_callback(lambda f: callback(f.result()))


class StandInPool:
    def __init__(self) -> None:
        self.executions: dict[str, StandInExecution] = {}

    async def execute(self, spec: TaskSpec) -> Any:
        execution = StandInExecution(spec.task_id)
        self.executions[spec.task_id] = execution
        return execution

    def enqueue(self, behind: Any, spec: TaskSpec) -> Any:
        return None  # no pipelining with this stand-in

    def can_start_now(self, owner: str) -> bool:
        return False  # every start goes through the dispatcher with this stand-in


class Recorder:
    def __init__(self) -> None:
        self.states: dict[str, list[str]] = {}

    def on_state(self, job: Job, state: str) -> None:
        self.states.setdefault(job.task_id, []).append(state)

    def admit(self, job: Job) -> str | None:
        return None

    def on_finish(self, job: Job, status: str) -> None:
        self.states.setdefault(job.task_id, []).append(status)


async def settle(scheduler: Scheduler) -> None:
    for _ in range(20):  # let the dispatcher run its queued events
        await asyncio.sleep(0)


async def test_a_block_that_arrives_after_a_preemption_makes_the_task_waiting() -> None:
    pool = StandInPool()
    scheduler = Scheduler(pool, slots=1, policy="rr", quantum=3600)  # type: ignore[arg-type]
    hooks = Recorder()
    scheduler.hooks = hooks
    runner = asyncio.create_task(scheduler.run())
    try:
        a = Job(
            task_id="a" * 32, spec=TaskSpec(task_id="a" * 32, owner="o", program="x", function="f")
        )
        b = Job(
            task_id="b" * 32, spec=TaskSpec(task_id="b" * 32, owner="o", program="x", function="f")
        )
        fa, fb = scheduler.submit(a), scheduler.submit(b)
        await settle(scheduler)
        assert hooks.states[a.task_id][-1] == "RUNNING"
        # the quantum expires (B is waiting) and, right behind it, A's blocking call lands
        scheduler._post("quantum", (a, a.stint))
        scheduler.block(a.task_id, "sem-wait:fork")
        await settle(scheduler)
        assert hooks.states[a.task_id][-3:] == ["READY", "RUNNING", "WAITING"]
        assert pool.executions[a.task_id].signals == ["STOP", "CONT"]  # not left stopped
        assert a.blocked and hooks.states[b.task_id][-1] == "RUNNING"  # the slot went to B
        # the call returns: A is READY, and runs again once B is done
        woken = scheduler.wake(a.task_id)
        await settle(scheduler)
        assert hooks.states[a.task_id][-1] == "READY" and not woken.done()
        pool.executions[b.task_id].done.set_result(TaskOutcome(status="ok", result=1))
        await settle(scheduler)
        assert woken.done() and hooks.states[a.task_id][-1] == "RUNNING"
        pool.executions[a.task_id].done.set_result(TaskOutcome(status="ok", result=2))
        assert (await fa).status == "DONE" and (await fb).status == "DONE"
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_finishing_tasks_does_not_reorder_the_whole_queue() -> None:
    """Regression: every finished task kicked the dispatcher with a *policy change*, which
    re-keyed the whole ready queue, so a batch of n tasks cost O(n²) key computations
    (3 ms of peer CPU per task at n = 1,000). Now each job is keyed O(1) times."""

    class Kicking(Recorder):
        def on_finish(self, job: Job, status: str) -> None:
            super().on_finish(job, status)
            scheduler.kick()  # as the kernel service does when memory comes back

    pool = StandInPool()
    scheduler = Scheduler(pool, slots=1, policy="fcfs")  # type: ignore[arg-type]
    scheduler.hooks = Kicking()
    keyed = 0
    static_key = scheduler._static_key

    def counting(job: Job) -> Any:
        nonlocal keyed
        keyed += 1
        return static_key(job)

    scheduler._static_key = counting  # type: ignore[method-assign]
    scheduler.ready._key = counting
    runner = asyncio.create_task(scheduler.run())
    n = 200
    try:
        futures = []
        for i in range(n):
            tid = f"{i:032d}"
            job = Job(task_id=tid, spec=TaskSpec(task_id=tid, owner="o", program="x", function="f"))
            futures.append(scheduler.submit(job))
        for i in range(n):
            await settle(scheduler)
            pool.executions[f"{i:032d}"].done.set_result(TaskOutcome(status="ok", result=i))
        results = await asyncio.gather(*futures)
        assert [r.status for r in results] == ["DONE"] * n
        assert keyed <= 2 * n, f"{keyed} key computations for {n} jobs"
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_promotion_when_the_holder_had_no_slot_or_its_worker_died() -> None:
    """Review findings: a handed task whose holder ended without a slot (paused as it
    replied) must not run untracked; one whose worker died must not be promoted."""
    from peeros.compute.pipelining import promote

    scheduler = Scheduler(StandInPool(), slots=1, policy="fcfs")  # type: ignore[arg-type]

    def job(name: str, started: bool) -> Job:
        j = Job(
            task_id=name * 32,
            spec=TaskSpec(task_id=name * 32, owner="o", program="x", function="f"),
        )
        execution = StandInExecution(j.task_id)
        execution.started = started  # type: ignore[attr-defined]
        j.execution = execution  # type: ignore[assignment]
        return j

    holder, nxt, last = job("a", True), job("b", True), job("c", False)
    holder.queued = [nxt, last]
    nxt.behind = last.behind = holder
    promote(scheduler, holder, None)  # the holder had no slot
    assert nxt.execution.signals == ["STOP"]  # type: ignore[union-attr]
    assert nxt.task_id in scheduler.ready and nxt.queued == [last] and last.behind is nxt

    dead, q1, q2 = job("d", True), job("e", False), job("f", False)
    dead.queued = [q1, q2]
    q1.behind = q2.behind = dead
    promote(scheduler, dead, 0)  # its worker died: nothing started
    assert 0 not in scheduler.running and q1.task_id not in scheduler.ready
    assert (q1.behind, q2.behind, q1.queued) == (None, None, [])
