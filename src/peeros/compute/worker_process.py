"""One task worker as the peer sees it: spawn, talk over pipes, signal its whole sandbox.

Only asyncio subprocess pipes are used, so the peer's event loop never blocks on a child,
and every await that talks to a child has a timeout (the reply to a task does not: a task
may legitimately run for hours; wall-clock limits are the scheduler's job, enforced with
:meth:`WorkerProcess.kill`).

The sandbox's processes are enumerated from the outside with psutil. Under bubblewrap the
tree is ``bwrap (host) → bwrap (pid-namespace init, reaper) → worker python → task
children``; orphans — also those that called ``setsid()`` — are reparented to the
namespace init, so they stay descendants of the outer bwrap process (NOTES: ``setsid()``
escapes a process group, not a pid namespace). Killing the namespace init makes the kernel
kill every process in the namespace at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import psutil

from peeros.compute.bwrap import WORKER_ENV
from peeros.compute.worker_protocol import PoolClosed, ProtocolError, SandboxError

log = logging.getLogger(__name__)

#: Largest single protocol message (a task or a result), in bytes.
MAX_MESSAGE = 256 << 20
#: A worker must be ready this soon after its start (bwrap + python take ~40 ms).
START_TIMEOUT = 15.0
#: Handing a task to a worker (writing into its stdin pipe) must finish this soon.
SEND_TIMEOUT = 10.0
#: A killed worker must be gone this soon.
EXIT_TIMEOUT = 5.0
#: Lines of each worker's stderr (task prints, worker errors) kept for diagnostics.
STDERR_LINES = 200


def describe_exit(returncode: int | None, sandboxed: bool) -> str:
    """Why a worker process ended, e.g. ``worker process died with signal SIGSEGV``.

    bubblewrap exits with 128 + N when the sandboxed command died of signal N.
    """
    if returncode is None:
        return "worker process did not exit"
    signum = -returncode if returncode < 0 else 0
    if sandboxed and returncode > 128:
        signum = returncode - 128
    if signum:
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = str(signum)
        return f"worker process died with signal {name}"
    return f"worker process exited with status {returncode}"


class WorkerProcess:
    """A started worker: its pipes, its stderr tail and its sandbox's processes."""

    def __init__(self, proc: asyncio.subprocess.Process, sandboxed: bool, number: int) -> None:
        self.proc = proc
        self.sandboxed = sandboxed
        self.number = number
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_LINES)
        self.returncode: int | None = None

    @classmethod
    async def spawn(
        cls, argv: Sequence[str], *, sandboxed: bool, number: int, env: dict[str, str]
    ) -> WorkerProcess:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd="/",
            start_new_session=True,  # its own process group: killpg reaches bwrap too
            limit=MAX_MESSAGE,
        )
        return cls(proc, sandboxed, number)

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def handshake(self) -> dict[str, Any]:
        """Wait for the worker's ``ready`` message (after it dropped its privileges)."""
        msg = await asyncio.wait_for(self.receive(), START_TIMEOUT)
        if msg is None or msg.get("ready") is not True:
            raise ProtocolError(f"no ready message (got {msg!r})")
        return msg

    async def drain_stderr(self) -> None:
        """Keep the stderr pipe flowing into a ring buffer and the debug log."""
        assert self.proc.stderr is not None
        while True:
            try:
                line = await self.proc.stderr.readline()
            except ValueError:  # an over-long line: drop what is buffered
                line = b"<over-long line dropped>\n"
            if not line:
                return
            text = line.decode(errors="replace").rstrip()
            self.stderr_tail.append(text)
            log.debug("worker %d: %s", self.number, text)

    async def send(self, line: bytes) -> None:
        """Write one message; raises ``OSError``/``TimeoutError`` if the worker is gone."""
        self.write(line)
        assert self.proc.stdin is not None
        if self.backlogged() or self.proc.stdin.transport.is_closing():
            # (wait_for runs drain() as a task of its own: only when the pipe pushed back)
            await asyncio.wait_for(self.proc.stdin.drain(), SEND_TIMEOUT)

    def backlogged(self) -> bool:
        """Bytes are waiting for the pipe (the worker is not reading fast enough)."""
        transport = self.proc.stdin.transport if self.proc.stdin is not None else None
        return transport is not None and transport.get_write_buffer_size() > 0

    def write(self, line: bytes) -> None:
        """Buffer one whole message for the pipe (never interleaved with another)."""
        assert self.proc.stdin is not None
        if line:
            self.proc.stdin.write(line)

    async def receive(self) -> dict[str, Any] | None:
        """The next message, or ``None`` at end of file (the worker is gone)."""
        assert self.proc.stdout is not None
        try:
            line = await self.proc.stdout.readline()
        except ValueError as exc:  # longer than MAX_MESSAGE
            raise ProtocolError(f"message over {MAX_MESSAGE} bytes") from exc
        if not line:
            return None
        if not line.endswith(b"\n"):
            return None  # cut short by the worker's death
        try:
            msg = json.loads(line)
        except ValueError as exc:
            raise ProtocolError(f"not JSON: {line[:80]!r}") from exc
        if not isinstance(msg, dict):
            raise ProtocolError(f"not a JSON object: {line[:80]!r}")
        return msg

    def _descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            return []

    def pids(self) -> list[int]:
        """Outer pids of every process in the sandbox (namespace init included)."""
        if self.sandboxed:
            return [p.pid for p in self._descendants()]
        return [self.pid, *(p.pid for p in self._descendants())] if self.alive else []

    def _task_pids(self) -> list[int]:
        """The processes to stop: everything in the sandbox but bwrap's namespace init."""
        if not self.sandboxed:
            return self.pids()
        procs = self._descendants()
        inits = {p.pid for p in procs if p.ppid() == self.pid}
        return [p.pid for p in procs if p.pid not in inits]

    @property
    def alive(self) -> bool:
        return self.returncode is None and self.proc.returncode is None

    def stop(self) -> None:
        """SIGSTOP every task process, again and again until no new process appears."""
        stopped: set[int] = set()
        while True:
            new = [pid for pid in self._task_pids() if pid not in stopped]
            if not new:
                return
            for pid in new:
                _signal(pid, signal.SIGSTOP)
            stopped.update(new)

    def cont(self) -> None:
        for pid in self._task_pids():
            _signal(pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL the whole sandbox at once; idempotent.

        Under bubblewrap only the namespace init is killed: the kernel kills every process
        of the namespace with it, before the init is reaped by the outer bwrap, which then
        exits. Killing the outer bwrap too would orphan the init (a zombie no one reaps).
        """
        if not self.alive:
            return
        procs = self._descendants()
        inits = [p.pid for p in procs if _ppid(p) == self.pid] if self.sandboxed else []
        for pid in inits:
            _signal(pid, signal.SIGKILL)
        if not inits:
            self._kill_tree(procs)

    def _kill_tree(self, procs: list[psutil.Process]) -> None:
        with contextlib.suppress(OSError):
            os.killpg(self.pid, signal.SIGKILL)
        _signal(self.pid, signal.SIGKILL)
        for p in procs:  # without a pid namespace, this is all we can reach
            _signal(p.pid, signal.SIGKILL)

    async def reap(self) -> int | None:
        """Wait for the worker to exit (killing it after EXIT_TIMEOUT); its return code."""
        try:
            self.returncode = await asyncio.wait_for(self.proc.wait(), EXIT_TIMEOUT)
        except TimeoutError:
            log.warning("worker %d did not exit; killing it", self.number)
            self._kill_tree(self._descendants())
            self.returncode = await asyncio.wait_for(self.proc.wait(), EXIT_TIMEOUT)
        return self.returncode

    def describe_exit(self) -> str:
        return describe_exit(self.returncode, self.sandboxed)


async def start_worker(
    argv: Sequence[str],
    *,
    sandboxed: bool,
    number: int,
    processes: set[WorkerProcess],
    background: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]],
    closed: Callable[[], bool],
) -> WorkerProcess:
    """Start a worker and wait for its ready message.

    The process is in ``processes`` while it lives (the pool's ``close()`` kills and
    reaps what is there), ``background`` runs its stderr drain, and ``closed()`` tells
    that the pool closed meanwhile (:class:`PoolClosed`). A worker that does not start is
    killed and reaped: :class:`SandboxError` with the tail of its stderr.
    """
    try:
        process = await WorkerProcess.spawn(
            argv, sandboxed=sandboxed, number=number, env=WORKER_ENV
        )
    except OSError as exc:
        raise SandboxError(f"could not start a worker: {exc}") from exc
    processes.add(process)
    stderr = background(process.drain_stderr())
    try:
        if closed():
            raise PoolClosed("the worker pool is closed")
        await process.handshake()
    except (ProtocolError, TimeoutError, OSError) as exc:
        process.kill()
        await process.reap()
        await asyncio.wait({stderr}, timeout=1.0)
        processes.discard(process)
        if closed():
            raise PoolClosed("the worker pool is closed") from None
        tail = " | ".join(process.stderr_tail) or "no output"
        raise SandboxError(f"worker did not start ({exc}): {tail}") from None
    except BaseException:  # cancelled, or closed meanwhile: close() reaps it
        process.kill()
        raise
    if closed():
        process.kill()
        await process.reap()
        processes.discard(process)
        raise PoolClosed("the worker pool is closed")
    return process


def _ppid(p: psutil.Process) -> int | None:
    try:
        return p.ppid()
    except psutil.Error:
        return None


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)
