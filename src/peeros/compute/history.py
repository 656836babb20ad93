"""Task history and audit: rows buffered in memory, written in group commits (SPEC §2).

A busy peer changes thousands of task states per second; one SQLite transaction per
change would cap it far lower. :class:`TaskHistory` keeps the latest row per task in
memory and writes them in one transaction per flush. A final state (DONE, FAILED,
TIMED_OUT, CANCELLED) is written at the next flush; a passing one (QUEUED, RUNNING) only
once it has lasted ``settle_after`` seconds — most tasks of a batch end well before, so
each is written once instead of three times.

Durability contract: the peer calls :meth:`~TaskHistory.flush_settled` from a timer
every ``flush_every`` seconds, :meth:`~TaskHistory.record` does so by itself once that is
overdue, and everything is written on shutdown (:meth:`~TaskHistory.close`) and before
any query. A crash therefore loses at most about ``flush_every`` seconds of final rows
and passing states younger than ``settle_after``, never a task's result (that is
returned to the client separately). No asyncio here: a flush is a short synchronous
SQLite transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from peeros.db import PeerDB

log = logging.getLogger(__name__)

Clock = Callable[[], float]

#: Flush early when this many distinct tasks are buffered, whatever the clock says.
MAX_BUFFERED = 50_000
#: States a task never leaves.
FINAL = frozenset({"DONE", "FAILED", "TIMED_OUT", "CANCELLED"})


class TaskHistory:
    """Write-behind buffer of task rows in front of :class:`PeerDB`."""

    def __init__(
        self,
        db: PeerDB,
        flush_every: float = 0.2,
        clock: Clock = time.monotonic,
        settle_after: float = 1.0,
    ) -> None:
        self.db = db
        self.flush_every = flush_every
        self.settle_after = settle_after
        self._clock = clock
        #: The latest row of each task not yet written, built when it is.
        self._buffer: dict[str, Callable[[], dict[str, Any]]] = {}
        #: When each buffered task's passing state was first buffered.
        self._since: dict[str, float] = {}
        self._last_flush = clock()

    @property
    def pending(self) -> int:
        """Rows recorded but not yet written."""
        return len(self._buffer)

    def record(self, row: dict[str, Any]) -> None:
        """Remember the current state of one task; the latest row per ``task_id`` wins.

        Flushes first-hand if the timer is overdue or the buffer is full, so the loss
        bound holds even if the peer's timer lags.
        """
        copy = dict(row)
        self.record_later(row["task_id"], row["status"], lambda: copy)

    def record_later(self, task_id: str, status: str, row: Callable[[], dict[str, Any]]) -> None:
        """:meth:`record` a row that ``row()`` builds when it is written, if it still is
        the latest of its task by then (most passing states are not): nothing is built
        on the task's way."""
        self._buffer.pop(task_id, None)  # re-insert: buffer order is last-update order
        self._buffer[task_id] = row
        if status in FINAL:
            self._since.pop(task_id, None)
        else:
            self._since.setdefault(task_id, self._clock())
        try:
            if len(self._buffer) >= MAX_BUFFERED:
                self.flush()
            elif self._clock() - self._last_flush >= self.flush_every:
                self.flush_settled()
        except Exception as exc:  # (e.g. a full disk) never into the task's way: kept, retried
            log.error("could not write the task history (rows kept for the next try): %r", exc)

    def flush_settled(self) -> int:
        """Write final rows and passing states older than ``settle_after``; return how
        many rows were written."""
        now = self._clock()
        self._last_flush = now
        cutoff = now - self.settle_after
        ready = [
            task_id
            for task_id in self._buffer
            if task_id not in self._since or self._since[task_id] <= cutoff
        ]
        if not ready:
            return 0
        self.db.record_tasks([self._buffer[t]() for t in ready])
        for task_id in ready:
            del self._buffer[task_id]
            self._since.pop(task_id, None)
        return len(ready)

    def flush(self) -> int:
        """Write every buffered row in one transaction; return how many.

        If the write fails the rows stay buffered (and the error propagates), so the
        next flush retries them.
        """
        self._last_flush = self._clock()
        if not self._buffer:
            return 0
        rows = [row() for row in self._buffer.values()]
        self.db.record_tasks(rows)
        self._buffer.clear()
        self._since.clear()
        log.debug("flushed %d task history rows", len(rows))
        return len(rows)

    def task(self, task_id: str) -> dict[str, Any] | None:
        """The latest row of one task, or None (flushes first, for one row shape)."""
        if task_id in self._buffer:
            self.flush()
        return self.db.task(task_id)

    def recent(self, limit: int) -> list[dict[str, Any]]:
        """The ``limit`` most recently submitted tasks, newest first (flushes first)."""
        self.flush()
        return self.db.recent(limit)

    def stats(self, since: float | None = None) -> dict[str, Any]:
        """:meth:`PeerDB.stats` over everything recorded so far (flushes first)."""
        self.flush()
        return self.db.stats(since)

    def close(self) -> None:
        """Flush what is buffered; the peer calls this on shutdown. Leaves ``db`` open."""
        self.flush()
