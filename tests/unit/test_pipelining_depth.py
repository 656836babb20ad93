"""How deep a busy worker is handed tasks ahead (pure logic), and that the messages
handed to a worker during one turn of the event loop go out in one write."""

from __future__ import annotations

import asyncio
from typing import Any

from peeros.compute.jobs import Job
from peeros.compute.pipelining import HANDOVER_BUDGET, MAX_DEPTH, depth
from peeros.compute.scheduler import Scheduler
from peeros.compute.worker_handle import Worker
from peeros.compute.workers import SandboxConfig, TaskSpec, WorkerPool


def job(expected: float | None = None, key: str = "k") -> Job:
    spec = TaskSpec(task_id="a" * 32, owner="o", program="x", function="f")
    return Job(task_id=spec.task_id, spec=spec, expected=expected, burst_key=key)


async def test_depth_follows_the_declared_or_learned_run_time() -> None:
    s = Scheduler(None, slots=1, pipeline=2)  # type: ignore[arg-type]
    assert depth(s, job()) == 2  # unknown length: the configured pipeline
    assert depth(s, job(expected=5.0)) == 2  # long: never less than the pipeline
    assert depth(s, job(expected=HANDOVER_BUDGET / 4)) == 4
    assert depth(s, job(expected=0.0)) == MAX_DEPTH
    s._bursts["k"] = HANDOVER_BUDGET / 3  # learned from earlier runs
    assert depth(s, job()) == 3
    s.pipeline = 0
    assert depth(s, job(expected=0.0)) == 0  # pipelining off stays off


class RecordingProcess:
    """Stands in for the worker's OS process: records what is written to its pipe."""

    number = 1

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def backlogged(self) -> bool:
        return False


async def test_messages_queued_in_one_turn_go_out_in_one_write() -> None:
    pool = WorkerPool(SandboxConfig())
    process = RecordingProcess()
    worker = Worker(process, "o", "busy")  # type: ignore[arg-type]
    for line in (b"t1\n", b"t2\n", b"t3\n"):
        pool._send_later(worker, line)
    assert process.writes == []
    await asyncio.sleep(0)
    assert process.writes == [b"t1\nt2\nt3\n"]
    pool._send_later(worker, b"revoke\n")
    await asyncio.sleep(0)
    assert process.writes[-1] == b"revoke\n" and worker.outbox == []
    dead: Any = Worker(RecordingProcess(), "o", "dead")  # type: ignore[arg-type]
    pool._send_later(dead, b"t\n")
    await asyncio.sleep(0)
    assert dead.process.writes == []


class HandingPool:
    """Stands in for the worker pool: every task is started or handed over at once."""

    def __init__(self) -> None:
        self.executions: dict[str, Any] = {}

    async def execute(self, spec: TaskSpec) -> Any:
        from tests.unit.test_scheduler_races import StandInExecution

        self.executions[spec.task_id] = StandInExecution(spec.task_id)
        return self.executions[spec.task_id]

    def enqueue(self, behind: Any, spec: TaskSpec) -> Any:
        from tests.unit.test_scheduler_races import StandInExecution

        execution: Any = StandInExecution(spec.task_id)
        execution.started = False
        self.executions[spec.task_id] = execution
        return execution


async def test_handed_tasks_do_not_count_against_the_bound_on_started_tasks() -> None:
    """max_started bounds the jobs holding a worker; handed jobs hold none, so a short
    task's full depth is handed even when it is above max_started - slots."""
    pool = HandingPool()
    s = Scheduler(pool, slots=1, max_started=3, pipeline=2)  # type: ignore[arg-type]
    runner = asyncio.get_running_loop().create_task(s.run())
    try:
        for i in range(12):
            spec = TaskSpec(task_id=f"{i:032x}", owner="o", program="x", function="f")
            s.submit(Job(task_id=spec.task_id, spec=spec, expected=0.0001))
        for _ in range(20):
            await asyncio.sleep(0)
        (running,) = s.running.values()
        assert len(running.queued) == MAX_DEPTH  # was max_started - slots = 2
        assert s._started() == 1
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
