"""What an origin keeps per task until its one final result exists (:class:`Tracked`), and
how a caller waits for many of them at once (:class:`Countdown`)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from peeros.protocol import ExecuteItem, TaskRequest, TaskResult, TaskStatus

#: Options that concern the origin only and never travel to an executor.
ORIGIN_ONLY = {"confidential", "max_retries", "cache", "elsewhere"}


class Countdown:
    """Resolves :attr:`future` once ``n`` watched tasks have their final result (one
    callback per task instead of one asyncio task per waited-for task), and calls
    ``then()`` right there, where the last one ends."""

    def __init__(self, n: int, then: Callable[[], None] | None = None) -> None:
        self.left = n
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.then = then

    def one_done(self) -> None:
        self.left -= 1
        if self.left <= 0 and not self.future.done():
            self.future.set_result(None)
            if self.then is not None:
                self.then()


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
    #: When the final result was set (wall clock).
    finished_at: float | None = None

    def item(self) -> ExecuteItem:
        """The task as an executor sees it (run here: no encoding at all)."""
        # The request was validated on the way in and the id and parent are ours: no
        # second validation (model_construct), only the fields an executor sees.
        data = {k: v for k, v in self.request.__dict__.items() if k not in ORIGIN_ONLY}
        return ExecuteItem.model_construct(
            task_id=self.task_id, parent=self.parent, group=self.group, **data
        )

    def item_json(self) -> str:
        """:meth:`item` as JSON, spliced from the request as validated on the way in
        (only what is not a default): cheaper than building the model to encode it."""
        head: dict[str, str] = {"task_id": self.task_id}
        if self.parent is not None:
            head["parent"] = self.parent
        if self.group is not None:
            head["group"] = self.group
        body = self.request.model_dump_json(exclude=ORIGIN_ONLY, exclude_defaults=True)
        return json.dumps(head)[:-1] + (", " + body[1:] if body != "{}" else "}")

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
            "finished_at": self.finished_at if r is not None else None,
            "execution_time": r.execution_time if r else None,
            "waiting_time": r.waiting_time if r else None,
            "turnaround_time": r.turnaround_time if r else None,
            "error": r.error if r else None,
        }
