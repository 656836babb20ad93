"""The origin's routing of tasks (``TaskService``) around a fake tracker and executor:
cancellation while a placement is under way, and leases given back by outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from peeros.compute.cache import ResultCache
from peeros.compute.quotas import TaskQuota
from peeros.compute.tasks import TaskService
from peeros.errors import Unavailable
from peeros.protocol import (
    Body,
    ExecuteRequest,
    ExecuteResponse,
    Placement,
    TaskRequest,
    TaskResult,
)
from tests.unit.test_placement import IDS

ORIGIN, OTHER = IDS[0], IDS[1]
LEASE = Placement(peer_id=OTHER, address="127.0.0.1:9001")
REQ = TaskRequest(program="def main(x):\n    return x\n", function="main", args=[1])


class History:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def record_later(self, task_id: str, status: str, row: Callable[[], dict[str, Any]]) -> None:
        self.rows.append(row())


class Scheduler:
    def __init__(self) -> None:
        self.cancelled: list[str] = []

    def cancel(self, task_id: str) -> None:  # (a task not yet sent anywhere)
        self.cancelled.append(task_id)


class Executor:
    """Only what the origin side touches; local runs are not expected here."""

    def __init__(self) -> None:
        self.scheduler = Scheduler()
        self.quota = TaskQuota(0, 60)


class Cluster:
    """The tracker and the other peer, as the origin sees them."""

    def __init__(self, status: str = "DONE") -> None:
        self.status = status
        self.gate = asyncio.Event()
        self.gate.set()
        self.placed: list[list[str]] = []
        self.ran: list[str] = []
        self.given_back: list[tuple[str, bool]] = []
        self.leases: list[Placement] = []

    async def place(self, count: int, exclude: list[str]) -> list[Placement]:
        self.placed.append(exclude)
        await self.gate.wait()
        if OTHER in exclude:
            raise Unavailable("no live peer can take this task")
        return [LEASE] * count

    def place_now(self, count: int, exclude: list[str]) -> list[Placement] | None:
        if len(self.leases) < count:
            return None
        taken, self.leases = self.leases[:count], self.leases[count:]
        return taken

    def give_back(self, lease: Placement, warm: bool) -> None:
        self.given_back.append((lease.peer_id, warm))

    async def execute(self, address: str, body: Body, timeout: float) -> ExecuteResponse:
        items = ExecuteRequest.model_validate_json(body.model_dump_json()).tasks
        self.ran += [i.task_id for i in items]
        status = self.status
        return ExecuteResponse(
            results=[
                TaskResult(
                    task_id=i.task_id,
                    status=status,
                    result=1 if status == "DONE" else None,
                    error=None if status == "DONE" else "ZeroDivisionError: division by zero",
                    peer_id=OTHER,
                )
                for i in items
            ]
        )

    async def cancel(self, address: str, task_id: str) -> None:
        pass


def service(cluster: Cluster) -> TaskService:
    return TaskService(
        ORIGIN,
        Executor(),  # type: ignore[arg-type]
        History(),  # type: ignore[arg-type]
        ResultCache(),
        cluster.place,
        cluster.execute,
        cluster.cancel,
        cluster.place_now,
        cluster.give_back,
    )


async def running(cluster: Cluster, body: Any) -> None:
    tasks = service(cluster)
    runner = asyncio.create_task(tasks.run())
    await asyncio.sleep(0)
    try:
        await body(tasks)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


def test_a_task_cancelled_while_being_placed_leaves_the_service_working() -> None:
    cluster = Cluster()
    cluster.gate.clear()  # the tracker has not answered yet

    async def body(tasks: TaskService) -> None:
        (first,) = tasks.submit([REQ])
        await asyncio.sleep(0)
        assert (await tasks.cancel(first)).status == "CANCELLED"
        cluster.gate.set()  # placed now, but nothing is left to run
        (second,) = tasks.submit([REQ])
        done = await tasks.wait([first, second], timeout=5, wait_all=True)
        assert [r.status for r in done.done] == ["CANCELLED", "DONE"]
        for _ in range(5):  # let the cancelled task's placement come to its end
            await asyncio.sleep(0)
        (third,) = tasks.submit([REQ])  # the service still runs tasks
        assert (await tasks.wait([third], timeout=5, wait_all=True)).pending == []
        assert cluster.ran == [second, third]

    asyncio.run(running(cluster, body))


def test_leases_come_back_first_after_a_success_and_last_after_a_failure() -> None:
    cluster = Cluster()
    cluster.leases = [LEASE, LEASE]

    async def body(tasks: TaskService) -> None:
        ok = tasks.submit([REQ])
        await tasks.wait(ok, timeout=5, wait_all=True)
        cluster.status = "FAILED"
        bad = tasks.submit([REQ])
        await tasks.wait(bad, timeout=5, wait_all=True)
        assert cluster.given_back == [(OTHER, True), (OTHER, False)]

    asyncio.run(running(cluster, body))


def test_elsewhere_retries_go_back_to_a_peer_they_failed_on_rather_than_fail_unrun() -> None:
    """The only other peer failed the task: its retry runs there again (never on the
    origin) and the caller gets the task's own error, not 'no other peer'."""
    cluster = Cluster(status="FAILED")
    elsewhere = REQ.model_copy(update={"elsewhere": True, "max_retries": 1})

    async def body(tasks: TaskService) -> None:
        ids = tasks.submit([elsewhere])
        (result,) = (await tasks.wait(ids, timeout=5, wait_all=True)).done
        assert (result.status, result.attempts) == ("FAILED", 2)
        assert result.error is not None and "ZeroDivisionError" in result.error
        assert cluster.ran == ids * 2
        assert cluster.placed == [[ORIGIN], [ORIGIN, OTHER], [ORIGIN]]

    asyncio.run(running(cluster, body))


def test_the_caller_hears_of_a_result_before_its_lease_is_given_back() -> None:
    """``when_done`` answers where the task ends: the origin's work that follows (giving
    the lease back, the history, the cache) comes after the answer, not before it."""
    cluster = Cluster()
    cluster.leases = [LEASE]

    async def body(tasks: TaskService) -> None:
        heard: list[tuple[list[str], list[tuple[str, bool]]]] = []
        ended = asyncio.Event()

        def then(results: list[TaskResult] | None) -> None:
            assert results is not None
            heard.append(([r.status for r in results], list(cluster.given_back)))
            ended.set()

        ids = tasks.submit([REQ])
        tasks.when_done(ids, 5.0, then)
        await asyncio.wait_for(ended.wait(), 5)
        assert heard == [(["DONE"], [])]  # answered while the lease was still out
        assert cluster.given_back == [(OTHER, True)]  # and given back right after

    asyncio.run(running(cluster, body))


def test_when_done_answers_at_once_for_ended_tasks_and_with_none_on_its_timeout() -> None:
    cluster = Cluster()
    cluster.gate.clear()  # the tracker does not answer: the task stays pending

    async def body(tasks: TaskService) -> None:
        answers: list[list[TaskResult] | None] = []
        ids = tasks.submit([REQ])
        tasks.when_done(ids, 0.0, answers.append)  # no waiting asked: ids only, now
        assert answers == [None]
        timed_out = asyncio.Event()
        tasks.when_done(ids, 0.05, lambda r: (answers.append(r), timed_out.set()))
        await asyncio.wait_for(timed_out.wait(), 5)
        assert answers == [None, None]
        assert tasks.tracked[ids[0]].watchers == []  # the expired wait left nothing behind
        cluster.gate.set()
        await tasks.wait(ids, timeout=5, wait_all=True)
        tasks.when_done(ids, 5.0, answers.append)  # ended already: answered on the spot
        last = answers[-1]
        assert last is not None and [r.status for r in last] == ["DONE"]
        tasks.when_done(ids, 0.0, answers.append)  # no waiting asked: ids only, as documented
        assert answers[-1] is None

    asyncio.run(running(cluster, body))


def test_a_chunk_that_cannot_be_sent_fails_cleanly_and_gives_its_lease_back() -> None:
    """An error while sending a task on a lease (here: any exception from the send) never
    escapes from ``submit``: the task ends FAILED, saying why, and the lease comes back."""
    cluster = Cluster()
    cluster.leases = [LEASE]

    def broken(address: str, body: Body, timeout: float) -> Any:
        raise RuntimeError("the link is in a bad state")

    async def body(tasks: TaskService) -> None:
        tasks.remote_execute = broken
        ids = tasks.submit([REQ])  # does not raise
        (result,) = (await tasks.wait(ids, timeout=5, wait_all=True)).done
        assert result.status == "FAILED" and "could not send the task" in (result.error or "")
        assert cluster.given_back == [(OTHER, False)]

    asyncio.run(running(cluster, body))


def test_a_waiter_whose_answer_fails_leaves_the_task_ended_and_its_lease_back() -> None:
    cluster = Cluster()
    cluster.leases = [LEASE]

    async def body(tasks: TaskService) -> None:
        def answer(results: list[TaskResult] | None) -> None:
            raise RuntimeError("the caller's connection is gone")

        ids = tasks.submit([REQ])
        tasks.when_done(ids, 5.0, answer)
        (result,) = (await tasks.wait(ids, timeout=5, wait_all=True)).done
        assert result.status == "DONE"
        assert cluster.given_back == [(OTHER, True)]
        assert tasks.history.rows[-1]["status"] == "DONE"  # type: ignore[attr-defined]

    asyncio.run(running(cluster, body))
