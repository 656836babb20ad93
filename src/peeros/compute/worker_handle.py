"""One worker as the pool tracks it, and the handle of a task handed to it.

A worker runs one task at a time (its *current* execution) and may hold a few more of the
same owner *queued* behind it: their messages already sit in its stdin pipe, so it starts
the next one the moment it sends a reply, without waiting for the peer (pipelining, as
Ray does with tasks in flight per worker). A queued task that has not started can be
*revoked* — the worker hands it back unrun (``{"revoke": id}`` → ``{"revoked": id,
"ok": true}``) — and when a worker dies, its queued tasks end as *unstarted*, which the
scheduler puts back in its ready queue: only the current task ever dies with a worker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from peeros.compute.worker_process import WorkerProcess
from peeros.compute.worker_protocol import ProtocolError, TaskOutcome, decode_outcome
from peeros.errors import PeerOSError

if TYPE_CHECKING:
    from peeros.compute.workers import WorkerPool

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Worker:
    process: WorkerProcess
    owner: str | None
    state: Literal["idle", "busy", "dead"]
    execution: Execution | None = None
    #: Tasks handed over behind the current one, in the order the worker will run them.
    queued: deque[Execution] = field(default_factory=deque)
    #: Messages waiting to be written in one go (``WorkerPool._send_later``).
    outbox: list[bytes] = field(default_factory=list)

    def post(self, line: bytes) -> bool:
        """Queue a message; True if the outbox was empty (a :meth:`flush` must follow)."""
        self.outbox.append(line)
        return len(self.outbox) == 1

    def flush(self) -> bool:
        """Write the queued messages at once (whole lines, never interleaved with another
        write); True if the pipe pushed back and the rest must be drained."""
        data = b"".join(self.outbox)
        self.outbox.clear()
        if not data or self.state == "dead":
            return False
        try:
            self.process.write(data)
        except (OSError, RuntimeError) as exc:
            log.info("worker %d: could not write: %r", self.process.number, exc)
            self.process.kill()
            return False
        return self.process.backlogged()

    def replied(self, msg: dict[str, Any]) -> tuple[Execution, TaskOutcome, str | None]:
        """The current task's reply: ``(its execution, its outcome, what the pool must do
        next)`` — ``retire`` the worker (it asked to be recycled), ``kill`` it (the next
        task had been revoked too late), or mark it ``idle``; the worker has moved on to
        its next queued task, if any. Raises :class:`ProtocolError` for a reply to no
        task of its."""
        execution = self.execution
        if execution is None or msg.get("id") != execution.task_id:
            raise ProtocolError(f"unexpected message {str(msg)[:80]}")
        outcome = decode_outcome(msg)
        if execution._kill_reason is not None:  # a reply that raced with kill()
            outcome = execution._ended("")
        self.execution = None
        if msg.get("note"):
            log.info("task %s: %s", execution.task_id, msg["note"])
        if msg.get("recycle"):
            return execution, outcome, "retire"
        if self.state == "dead":  # killed as it replied: queued tasks come back unstarted
            return execution, outcome, None
        if (nxt := self.promote()) is not None:
            return execution, outcome, "kill" if nxt._kill_reason is not None else None
        if self.state == "busy":
            self.state = "idle"
            return execution, outcome, "idle"
        return execution, outcome, None

    def promote(self) -> Execution | None:
        """The current task replied: the first queued one is running now."""
        self.execution = self.queued.popleft() if self.queued else None
        if self.execution is not None:
            self.execution._started = time.monotonic()
            self.execution.started = True
        return self.execution

    def on_revoked(self, msg: dict[str, Any]) -> None:
        """The worker's answer to a revoke: the task came back unrun, or it had started."""
        task_id = msg.get("revoked")
        for execution in self.queued:
            if execution.task_id == task_id:
                if msg.get("ok") is True:
                    self.queued.remove(execution)
                    execution._finish(execution._ended("revoked"))
                return

    def settle_all(self, why: str) -> None:
        """The worker is gone: its current task crashed (or was killed); queued ones never
        started."""
        if self.execution is not None:
            self.execution._finish(self.execution._ended(why))
            self.execution = None
        while self.queued:
            self.queued.popleft()._finish(TaskOutcome(status="crashed", error=why, started=False))


class Execution:
    """A task handed to a worker: pause, resume or kill its whole sandbox; wait for it."""

    def __init__(
        self, task_id: str, worker: Worker, pool: WorkerPool, owner: str = "", started: bool = True
    ) -> None:
        self.task_id = task_id
        self.owner = owner
        self._worker = worker
        self._pool = pool
        self._future: asyncio.Future[TaskOutcome] = asyncio.get_running_loop().create_future()
        self._paused = False
        self._kill_reason: str | None = None
        self._started = time.monotonic()
        #: False while queued behind another task of the worker.
        self.started = started
        self._revoking = False
        self._callbacks: list[Callable[[TaskOutcome], None]] = []

    def _active(self) -> bool:
        return not self._future.done() and self._worker.execution is self

    @property
    def queued(self) -> bool:
        return not self._future.done() and self in self._worker.queued

    def pause(self) -> None:
        """SIGSTOP every process of the sandbox (the task and all its children). Idempotent."""
        if self._active() and not self._paused:
            self._paused = True
            self._worker.process.stop()

    def resume(self) -> None:
        """SIGCONT them all. Idempotent."""
        if self._paused:
            self._paused = False
            self._worker.process.cont()

    def kill(self, reason: str = "killed") -> None:
        """SIGKILL the whole sandbox; :meth:`wait` then returns ``killed`` with ``reason``.

        A queued task is revoked instead (the task running before it goes on); should it
        have started meanwhile, the worker is killed as soon as the pool sees that."""
        if self._active():
            self._kill_reason = self._kill_reason or reason
            self._pool._discard(self._worker)
            self._worker.process.kill()
        elif self.queued:
            self._kill_reason = self._kill_reason or reason
            self.revoke()

    def revoke(self) -> None:
        """Ask the worker to hand this queued task back unrun; :meth:`wait` then returns
        an outcome with ``started=False`` (or the task's own outcome, had it started)."""
        if self.queued and not self._revoking:
            self._revoking = True
            line = json.dumps({"revoke": self.task_id}).encode() + b"\n"
            self._pool._send_later(self._worker, line)

    def on_done(self, callback: Callable[[TaskOutcome], None]) -> None:
        """Call ``callback(outcome)`` once the task has ended: at once, where the outcome
        is settled (a future's callback would cost one more turn of the event loop)."""
        if self._future.done():
            callback(self._future.result())
        else:
            self._callbacks.append(callback)

    async def wait(self) -> TaskOutcome:
        """The outcome (``crashed`` if the worker process died under the task)."""
        return await asyncio.shield(self._future)

    @property
    def pids(self) -> list[int]:
        """Outer pids of every process in the sandbox (for tests)."""
        return self._worker.process.pids() if self._active() else []

    def _finish(self, outcome: TaskOutcome) -> None:
        self.resume()  # never leave a stopped worker behind (a no-op unless it paused it)
        if not self._future.done():
            self._future.set_result(outcome)
            callbacks, self._callbacks = self._callbacks, []
            for callback in callbacks:
                try:
                    callback(outcome)
                except Exception:  # never into the worker's monitor: it would stop reading
                    log.exception("task %s: a callback on its end failed", self.task_id)

    def _ended(self, why: str) -> TaskOutcome:
        wall = time.monotonic() - self._started
        if not self.started:
            return TaskOutcome(status="crashed", error=why or "revoked", started=False)
        if self._kill_reason is not None:
            return TaskOutcome(status="killed", error=self._kill_reason, wall_time=wall)
        return TaskOutcome(status="crashed", error=why, wall_time=wall)


#: The peer's answer to a task's system call: (task id, owner, op, args) -> result.
SyscallHandler = Callable[[str, str, str, dict[str, Any]], Awaitable[Any]]


async def answer_syscall(
    handler: SyscallHandler | None, worker: Worker, execution: Execution, msg: dict[str, Any]
) -> None:
    """Answer one system call of the running task (see ``sandbox.peeros_syscall``).

    The task's process is blocked reading its pipe until the answer arrives. The
    handler is the peer's kernel service; its errors become the call's error.
    """
    seq = msg.get("seq")
    op, args = msg.get("syscall"), msg.get("args")
    reply: dict[str, Any] = {"sysret": seq}
    if handler is None:
        reply["error"] = "this peer offers no system calls"
    elif not isinstance(op, str) or not isinstance(args, dict) or not isinstance(seq, int):
        reply["error"] = "malformed system call"
    else:
        try:
            reply["result"] = await handler(execution.task_id, execution.owner, op, args)
        except PeerOSError as exc:
            reply["error"] = exc.message
    if worker.execution is not execution:
        return  # the task ended (or was killed) while the call was in progress
    try:
        await worker.process.send(json.dumps(reply).encode() + b"\n")
    except (OSError, TimeoutError) as exc:
        log.info("could not answer a system call of %s: %r", execution.task_id, exc)
