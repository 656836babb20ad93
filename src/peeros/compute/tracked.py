"""What an origin keeps per task until its one final result exists (:class:`Tracked`), and
how a caller waits for many of them at once (:class:`Countdown`)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from peeros.protocol import TaskRequest, TaskResult, TaskStatus


class Countdown:
    """Resolves :attr:`future` once ``n`` watched tasks have their final result (one
    callback per task instead of one asyncio task per waited-for task)."""

    def __init__(self, n: int) -> None:
        self.left = n
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def one_done(self) -> None:
        self.left -= 1
        if self.left <= 0 and not self.future.done():
            self.future.set_result(None)


@dataclass
class Tracked:
    """A task as its origin tracks it until the one final result exists."""

    task_id: str
    request: TaskRequest
    submitted: float
    attempts: int = 0
    executor: str | None = None
    failed_on: list[str] = field(default_factory=list)
    result: TaskResult | None = None
    #: The final result exists; ``watchers`` are told when it does.
    finished: bool = False
    watchers: list[Countdown] = field(default_factory=list)
    cache_key: str | None = None
    parent: str | None = None
    group: str | None = None
    #: Cluster address of the peer running the last attempt (None: this peer).
    address: str | None = None
    #: What the history records as the program's digest (computed once).
    program_sha: str = ""

    def final(self, result: TaskResult, origin: str) -> TaskResult:
        """An executor's ``result`` as the caller sees it: this task's id and tries."""
        return result.model_copy(
            update={
                "task_id": self.task_id,
                "attempts": self.attempts,
                "origin": origin,
                "turnaround_time": time.time() - self.submitted,
            }
        )

    def from_cache(self, cached: TaskResult, origin: str) -> TaskResult:
        """The result of an identical earlier task, answered without running this one."""
        return cached.model_copy(
            update={
                "task_id": self.task_id,
                "cached": True,
                "attempts": 0,
                "waiting_time": 0.0,
                "turnaround_time": 0.0,
                "origin": origin,
            }
        )

    def ended(
        self, origin: str, error: str, status: TaskStatus = "FAILED", peer_id: str | None = None
    ) -> TaskResult:
        """The final result of a task that ended without running to its end."""
        return TaskResult(
            task_id=self.task_id,
            status=status,
            error=error,
            origin=origin,
            peer_id=peer_id,
            attempts=self.attempts,
            turnaround_time=time.time() - self.submitted,
        )

    def history_row(self, origin: str, status: str) -> dict[str, Any]:
        """The task's row in the history and audit table, in ``status``."""
        r = self.result
        req = self.request
        return {
            "task_id": self.task_id,
            "origin": origin,
            "executor": self.executor,
            "status": status,
            "function": req.function or "<callable>",
            "program_sha256": self.program_sha,
            "priority": req.priority,
            "confidential": int(req.confidential),
            "attempts": self.attempts,
            "submitted_at": self.submitted,
            "started_at": None,
            "finished_at": time.time() if r is not None else None,
            "execution_time": r.execution_time if r else None,
            "waiting_time": r.waiting_time if r else None,
            "turnaround_time": r.turnaround_time if r else None,
            "error": r.error if r else None,
        }
