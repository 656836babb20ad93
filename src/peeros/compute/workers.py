"""The peer's pool of sandboxed task workers (SPEC §2: tasks never run in the peer).

Costs measured here (NOTES) shape the design: ``os.fork()`` + ``waitpid`` costs
~1.2-1.6 ms, so a worker does not fork per task; it runs tasks in-process, one at a time,
and is reused. Starting a bubblewrap sandbox + Python costs ~40 ms, so the pool keeps
``warm`` idle, unbound workers ready. A worker serves ONE owner (the submitting peer) at a
time — that is the trust boundary, as a Ray worker serves one job: a task can only ever
observe leftovers of tasks of its own owner (e.g. the cached top level of its programs).

The sandbox (:mod:`peeros.compute.bwrap`) is used when running as root and bubblewrap
works — detected once at :meth:`WorkerPool.start` by starting a sandboxed worker. Otherwise
the worker runs unsandboxed with only rlimits (and uid 65534 when root), a warning is
logged and :attr:`WorkerPool.sandboxed` is ``False`` (the peer shows it in ``status``).

Every background activity (warm-up starts, per-worker monitors, stderr drains) is an
asyncio task owned by the pool and cancelled by :meth:`WorkerPool.close`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Coroutine
from typing import Any

from peeros.compute import bwrap
from peeros.compute.worker_handle import Execution, SyscallHandler, Worker, answer_syscall
from peeros.compute.worker_process import EXIT_TIMEOUT, WorkerProcess, start_worker
from peeros.compute.worker_protocol import (
    PoolClosed,
    ProtocolError,
    SandboxConfig,
    SandboxError,
    TaskOutcome,
    TaskSpec,
    encode_task,
)
from peeros.errors import PeerOSError

__all__ = [
    "Execution",
    "PoolClosed",
    "SandboxConfig",
    "SandboxError",
    "TaskOutcome",
    "TaskSpec",
    "WorkerPool",
]

log = logging.getLogger(__name__)


class WorkerPool:
    """Warm, reusable, per-owner sandboxed workers. See the module docstring."""

    def __init__(self, config: SandboxConfig, warm: int = 2, max_workers: int = 16) -> None:
        if max_workers < 1 or warm < 0:
            raise ValueError("need max_workers >= 1 and warm >= 0")
        self.config = config
        self.sandboxed = False
        self._warm = min(warm, max_workers)
        self._max = max_workers
        self._workers: list[Worker] = []
        self._processes: set[WorkerProcess] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._starting = 0  # workers being started (all kinds)
        self._starting_unbound = 0  # of which background warm-ups
        self._counts: Counter[str] = Counter()
        self._changed = asyncio.Event()
        self._started = False
        self._closed = False
        self._argv: list[str] = []
        #: ``(task_id, owner, op, args) -> result``: the peer's system-call handler.
        self.syscall_handler: SyscallHandler | None = None

    async def __aenter__(self) -> WorkerPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        """Detect the sandbox mode, then pre-start ``warm`` idle unbound workers."""
        if self._started:
            return
        first = await self._detect()
        self._started = True
        if first is not None and self._warm == 0:
            first.state = "dead"
            first.process.kill()
        more = max(0, self._warm - (first is not None))
        self._starting += more
        results = await asyncio.gather(
            *(self._spawn(None) for _ in range(more)), return_exceptions=True
        )
        for r in results:
            if isinstance(r, BaseException):
                await self.close()
                raise r

    async def close(self) -> None:
        """Kill every worker and wait for them: no process is left behind."""
        if self._closed:
            return
        self._closed = True
        self._notify()
        for w in self._workers:
            if w.execution is not None and w.execution._kill_reason is None:
                w.execution._kill_reason = "worker pool closed"
        for p in list(self._processes):
            p.kill()
        if self._tasks:  # monitors see the deaths and settle the executions
            await asyncio.wait(set(self._tasks), timeout=EXIT_TIMEOUT)
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for p in list(self._processes):
            p.kill()
            await p.reap()
            self._processes.discard(p)
        for w in self._workers:
            w.settle_all("worker pool closed")
        self._workers.clear()

    def stats(self) -> dict[str, int]:
        """Workers total / idle / busy / starting; started, recycled, crashed, killed."""
        live = [w for w in self._workers if w.state != "dead"]
        return {
            "total": len(live),
            "idle": sum(w.state == "idle" for w in live),
            "busy": sum(w.state == "busy" for w in live),
            "starting": self._starting,
            "started": self._counts["started"],
            "recycled": self._counts["recycled"],
            "crashed": self._counts["crashed"],
            "killed": self._counts["killed"],
        }

    # -- running tasks -----------------------------------------------------------------
    async def execute(self, spec: TaskSpec) -> Execution:
        """Hand ``spec`` to a worker of its owner; return once it was handed over.

        Preference: an idle worker bound to ``spec.owner``, else an idle unbound one (now
        bound), else a new one — recycling an idle worker of another owner at
        ``max_workers``. When all ``max_workers`` are busy it waits for one to finish (the
        scheduler bounds its concurrency, so it normally never does). Invalid specs raise
        :class:`~peeros.errors.BadRequest`; a closed pool raises :class:`PoolClosed`.
        """
        if self._closed:
            raise PoolClosed("the worker pool is closed")
        if not self._started:
            raise SandboxError("WorkerPool.start() was not called")
        line = encode_task(spec, self.config)
        worker = await self._acquire(spec.owner)
        execution = worker.execution = Execution(spec.task_id, worker, self, spec.owner)
        try:
            await worker.process.send(line)
        except (OSError, TimeoutError) as exc:  # dead or stuck: its monitor reports the crash
            log.warning("could not hand task %s to worker: %r", spec.task_id, exc)
            worker.process.kill()
        except asyncio.CancelledError:
            execution.kill("cancelled while being handed over")
            raise
        self._replenish()
        return execution

    def can_start_now(self, owner: str) -> bool:
        """An idle worker for ``owner`` is at hand (:meth:`start_now` would find one)."""
        return self._started and not self._closed and self._idle_for(owner) is not None

    def start_now(self, spec: TaskSpec) -> Execution | None:
        """Hand ``spec`` to an idle worker of its owner (or an unbound one) without
        waiting; None if there is none, or if ``spec`` cannot be handed to any worker
        (then :meth:`execute` says why)."""
        if not self.can_start_now(spec.owner):
            return None
        try:
            line = encode_task(spec, self.config)
        except PeerOSError:
            return None
        worker = self._idle_for(spec.owner)
        assert worker is not None
        worker.state, worker.owner = "busy", spec.owner
        execution = worker.execution = Execution(spec.task_id, worker, self, spec.owner)
        if worker.post(line):
            self._flush(worker)
        self._replenish()
        return execution

    def enqueue(self, behind: Execution, spec: TaskSpec) -> Execution | None:
        """Queue ``spec`` on the worker running ``behind`` (same owner), to start as soon
        as the tasks before it reply; None if that worker cannot take it any more."""
        worker = behind._worker
        if (
            self._closed
            or worker.state != "busy"
            or worker.owner != spec.owner
            or behind._future.done()
            or (worker.execution is not behind and behind not in worker.queued)
        ):
            return None
        line = encode_task(spec, self.config)
        execution = Execution(spec.task_id, worker, self, spec.owner, started=False)
        worker.queued.append(execution)
        self._send_later(worker, line)
        return execution

    def _send_later(self, worker: Worker, line: bytes) -> None:
        """Queue ``line`` for the worker; everything queued during one turn of the event
        loop (e.g. the tasks one dispatch hands to it) goes out in a single write, which
        the worker reads in one go. Messages to a worker keep their order."""
        if worker.post(line):
            asyncio.get_running_loop().call_soon(self._flush, worker)

    def _flush(self, worker: Worker) -> None:
        """Write the worker's queued messages; drain in the background only if the pipe
        pushed back."""
        if worker.flush():
            self._background(self._drain(worker))

    async def _drain(self, worker: Worker) -> None:
        try:
            await worker.process.send(b"")
        except (OSError, TimeoutError) as exc:  # its monitor reports the death
            log.info("worker %d: could not write: %r", worker.process.number, exc)
            worker.process.kill()

    async def _acquire(self, owner: str) -> Worker:
        while True:
            if self._closed:
                raise PoolClosed("the worker pool is closed")
            changed = self._changed
            worker = self._idle_for(owner)
            if worker is not None:
                worker.state, worker.owner = "busy", owner
                return worker
            idle = [w for w in self._workers if w.state == "idle"]
            if self._room() <= 0 and idle:  # all idle workers belong to other owners
                self._retire(idle[0], "making room for another owner")
            if self._room() > 0:
                self._starting += 1
                return await self._spawn(owner)
            await changed.wait()

    def _idle_for(self, owner: str) -> Worker | None:
        """An idle worker bound to ``owner``, else an idle unbound one, else None."""
        unbound = None
        for w in self._workers:
            if w.state == "idle":
                if w.owner == owner:
                    return w
                if w.owner is None and unbound is None:
                    unbound = w
        return unbound

    def _room(self) -> int:
        live = sum(w.state != "dead" for w in self._workers)
        return self._max - live - self._starting

    def _replenish(self) -> None:
        """Start background workers until ``warm`` unbound ones are idle or starting."""
        if self._closed or not self._started:
            return
        unbound = sum(w.state == "idle" and w.owner is None for w in self._workers)
        for _ in range(min(self._warm - unbound - self._starting_unbound, self._room())):
            self._starting += 1
            self._starting_unbound += 1
            self._background(self._warm_up())

    async def _warm_up(self) -> None:
        try:
            await self._spawn(None)
        except SandboxError as exc:
            log.error("could not start a warm worker: %s", exc)
        except PoolClosed:
            pass
        finally:
            self._starting_unbound -= 1

    async def _spawn(self, owner: str | None) -> Worker:
        """Start a worker: busy for ``owner``, or idle and unbound when ``owner`` is None.

        The caller has counted it in ``_starting`` (synchronously, so no two callers can
        both see room for one more worker); that count is released here.
        """
        try:
            self._counts["spawns"] += 1
            process = await start_worker(
                self._argv,
                sandboxed=self.sandboxed,
                number=self._counts["spawns"],
                processes=self._processes,
                background=self._background,
                closed=lambda: self._closed,
            )
        finally:
            self._starting -= 1
        worker = Worker(process, owner, "idle" if owner is None else "busy")
        self._workers.append(worker)
        self._counts["started"] += 1
        self._background(self._monitor(worker))
        self._notify()
        return worker

    async def _monitor(self, worker: Worker) -> None:
        """Read the worker's replies until it dies; then settle its task and replace it."""
        process, why = worker.process, ""
        try:
            while (msg := await process.receive()) is not None:
                execution = worker.execution
                if execution is not None and "syscall" in msg:
                    self._background(answer_syscall(self.syscall_handler, worker, execution, msg))
                    continue
                if "revoked" in msg:
                    worker.on_revoked(msg)
                    continue
                execution, outcome, then = worker.replied(msg)
                if then == "retire":  # the worker runs nothing more: queued tasks come back
                    self._retire(worker, f"task {execution.task_id}: {msg['recycle']}")
                elif then == "kill":  # a task revoked too late started: it must not run
                    self._discard(worker)
                    process.kill()
                elif then == "idle":
                    self._notify()
                # Last: whoever learns of the end (at once) sees the worker as it is now.
                execution._finish(outcome)
            await process.reap()
            why = process.describe_exit()
        except ProtocolError as exc:
            why = f"worker sent an invalid message: {exc}"
            process.kill()
            await process.reap()
        finally:
            if process.returncode is not None:  # else close() still has to reap it
                self._processes.discard(process)
            self._bury(worker, why)

    def _bury(self, worker: Worker, why: str) -> None:
        unexpected = worker.state != "dead" and not self._closed
        if unexpected:
            self._counts["crashed"] += 1
            log.warning("worker %d: %s", worker.process.number, why)
        worker.state = "dead"
        if worker in self._workers:
            self._workers.remove(worker)
        worker.settle_all(why)
        self._notify()
        self._replenish()

    def _retire(self, worker: Worker, reason: str) -> None:
        log.info("recycling worker %d: %s", worker.process.number, reason)
        self._counts["recycled"] += 1
        worker.state = "dead"
        worker.process.kill()

    def _discard(self, worker: Worker) -> None:
        """Called by :meth:`Execution.kill`: the worker is gone for good."""
        if worker.state != "dead":
            self._counts["killed"] += 1
            worker.state = "dead"

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _background(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("worker pool task failed", exc_info=task.exception())

    # -- sandbox mode ------------------------------------------------------------------
    async def _detect(self) -> Worker | None:
        """Choose the mode once. The probe — a real sandboxed worker, so the whole setup
        is verified — is kept as the first warm worker."""
        why = bwrap.unusable_reason(self.config)
        if why is None:
            self.sandboxed = True
            try:
                self._argv = bwrap.worker_command(self.config, sandboxed=True)
            except ValueError as exc:  # a hidden path that cannot be hidden: never run then
                raise SandboxError(str(exc)) from None
            self._starting += 1
            try:
                return await self._spawn(None)
            except SandboxError as exc:
                why = str(exc)
        if self.config.use_bwrap:
            raise SandboxError(f"the bubblewrap sandbox was requested but is unusable: {why}")
        log.warning("task workers run WITHOUT a sandbox (%s): rlimits and uid only", why)
        self.sandboxed = False
        self._argv = bwrap.worker_command(self.config, sandboxed=False)
        return None
