"""An origin's tasks until each has its one final result, and how callers get them:
from memory while they are kept, else from the history; waiting for many at once, or
being told the moment they have all ended (:meth:`TaskResults.when_done`)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable

from peeros.compute.history import TaskHistory
from peeros.compute.tracked import Countdown, Tracked
from peeros.errors import NotFound
from peeros.protocol import TaskResult, WaitResponse

#: Tasks kept in memory (finished ones are dropped first, oldest first).
KEEP_RESULTS = 100_000


class TaskResults:
    """The tasks an origin tracks, by id, and their results."""

    def __init__(self, peer_id: str, history: TaskHistory) -> None:
        self.peer_id = peer_id
        self.history = history
        self.tracked: OrderedDict[str, Tracked] = OrderedDict()

    def _remember(self, t: Tracked) -> None:
        self.tracked[t.task_id] = t
        while len(self.tracked) > KEEP_RESULTS:
            oldest_id, oldest = next(iter(self.tracked.items()))
            if not oldest.finished:
                break
            del self.tracked[oldest_id]

    def get(self, task_id: str) -> TaskResult:
        t = self.tracked.get(task_id)
        if t is None:
            row = self.history.task(task_id)
            if row is None:
                raise NotFound(f"no task {task_id} on this peer")
            return TaskResult(
                task_id=task_id,
                status=row["status"],
                error=row["error"],
                peer_id=row["executor"],
                origin=row["origin"],
                attempts=row["attempts"],
                execution_time=row["execution_time"],
                waiting_time=row["waiting_time"],
                turnaround_time=row["turnaround_time"],
            )
        if t.result is not None:
            return t.result
        return TaskResult(
            task_id=task_id,
            status="RUNNING" if t.attempts else "QUEUED",
            peer_id=t.executor,
            origin=self.peer_id,
            attempts=t.attempts,
        )

    async def wait(self, task_ids: list[str], timeout: float, wait_all: bool) -> WaitResponse:
        tracked = []
        for task_id in task_ids:
            if task_id not in self.tracked:
                self.get(task_id)  # raises NotFound for unknown ids
            else:
                tracked.append(self.tracked[task_id])
        pending = [t for t in tracked if not t.finished]
        if pending and timeout > 0:
            countdown = Countdown(len(pending) if wait_all else 1)
            for t in pending:
                t.watchers.append(countdown)
            try:  # (the countdown is this call's own: a timeout may cancel it)
                async with asyncio.timeout(timeout):
                    await countdown.future
            except TimeoutError:
                pass
            finally:
                for t in pending:
                    if countdown in t.watchers:
                        t.watchers.remove(countdown)
        done = [self.get(i) for i in task_ids if i not in self.tracked or self.tracked[i].finished]
        return WaitResponse(
            done=done,
            pending=[i for i in task_ids if i in self.tracked and not self.tracked[i].finished],
        )

    def when_done(
        self, task_ids: list[str], timeout: float, then: Callable[[list[TaskResult] | None], None]
    ) -> None:
        """Call ``then(results)`` the moment every task of ``task_ids`` (tracked ones) has
        its final result — in the callback where the last one ends, before the work that
        follows it — or ``then(None)`` once ``timeout`` seconds have passed without (at
        once for 0: ids only, even of tasks that have ended)."""
        if timeout <= 0:
            then(None)
            return
        pending = [self.tracked[i] for i in task_ids if i in self.tracked]
        pending = [t for t in pending if not t.finished]
        if not pending:
            then([self.get(i) for i in task_ids])
            return

        def all_done() -> None:
            timer.cancel()
            then([self.get(i) for i in task_ids])

        def expired() -> None:
            for t in pending:
                if countdown in t.watchers:
                    t.watchers.remove(countdown)
            then(None)

        countdown = Countdown(len(pending), all_done)
        timer = asyncio.get_running_loop().call_later(timeout, expired)
        for t in pending:
            t.watchers.append(countdown)
