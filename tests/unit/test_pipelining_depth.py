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
