"""What an origin keeps per task until its one final result exists (:class:`Tracked`), and
how a caller waits for many of them at once (:class:`Countdown`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from peeros.protocol import TaskRequest, TaskResult


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
