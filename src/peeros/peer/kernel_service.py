"""The peer's kernel: the OS mechanisms of :mod:`peeros.kernel` driving real tasks.

* **Processes** — every job the scheduler sees is a process in :attr:`table`; its
  state follows the scheduler (NEW, READY, RUNNING, WAITING) and it becomes a ZOMBIE
  when it ends. A top-level task is collected at once (its result goes back to the
  submitting peer); a child spawned by a task stays a zombie until its parent's
  ``task.wait()`` collects it.
* **Admission** — before a task first runs, its ``memory_mb`` is reserved in the
  contiguous pool (:class:`~peeros.kernel.allocator.Allocator`) and, if it declares
  claims, the Banker's algorithm must find the state safe after granting its initial
  holding. Otherwise the task waits in the ready queue (the reason is shown) and is
  tried again when something is released.
* **System calls** — what task code asks through ``peeros.task`` (see
  :meth:`syscall`): spawn and wait for children, IPC, resource requests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from peeros.compute.jobs import Job
from peeros.errors import BadRequest, NotFound, PeerOSError
from peeros.kernel.allocator import Allocator, NoFit
from peeros.kernel.bankers import Banker
from peeros.kernel.processes import ProcessTable

if TYPE_CHECKING:
    from peeros.compute.scheduler import Scheduler

log = logging.getLogger(__name__)


class KernelService:
    def __init__(
        self,
        peer_id: str,
        scheduler: Scheduler,
        memory_pool_mb: int,
        alloc_policy: str,
        resources: dict[str, int],
    ) -> None:
        self.peer_id = peer_id
        self.scheduler = scheduler
        self.table = ProcessTable(peer_id)
        self.allocator = Allocator(memory_pool_mb, alloc_policy)
        self.resources = {"cpu": scheduler.slots, "memory_mb": memory_pool_mb, **resources}
        self.banker = Banker(list(self.resources), list(self.resources.values()))
        #: Called when a task ends, to give back IPC units it held (set by the node).
        self.on_task_end: list[Any] = []
        #: Killed processes: reaped as soon as they exit (no parent is left to collect them,
        #: as init adopts and reaps orphans).
        self._reap_on_exit: set[str] = set()
        scheduler.hooks = self

    # --- scheduler hooks -------------------------------------------------------------

    def on_state(self, job: Job, state: str) -> None:
        if state == "NEW":
            if job.task_id not in self.table:
                self.table.create(
                    job.task_id,
                    (job.name or job.task_id[:8])[:200],  # (a function name may be longer)
                    time.time(),
                    parent=job.parent,
                    parent_group=job.group,
                )
            return
        proc = self.table.get(job.task_id) if job.task_id in self.table else None
        if proc is None or proc.state == state:
            return
        self.table.move(job.task_id, state, job.waiting_on)  # type: ignore[arg-type]

    def vector(self, amounts: dict[str, int], what: str) -> dict[str, int]:
        """A full Banker's vector from a partial one; unknown names are an error."""
        unknown = sorted(set(amounts) - set(self.resources))
        if unknown:
            raise BadRequest(
                f"{what}: unknown resource {', '.join(unknown)} (this peer has "
                f"{', '.join(f'{k}={v}' for k, v in self.resources.items())})"
            )
        return {name: int(amounts.get(name, 0)) for name in self.resources}

    def validate(self, job: Job) -> None:
        """Refuse, before anything is queued, a job that could never be admitted."""
        if not (job.memory_mb or job.claims or job.holds):
            return
        if job.memory_mb and job.memory_mb > self.allocator.size:
            raise BadRequest(
                f"memory_mb {job.memory_mb} exceeds this peer's task memory pool "
                f"({self.allocator.size} MB)"
            )
        claims = self.vector(job.claims, "claims")
        holds = self.vector(job.holds, "holds")
        for name, amount in holds.items():
            if amount > claims[name]:
                raise BadRequest(f"holds {name}={amount} exceeds the claim {claims[name]}")
        for name, amount in claims.items():
            if amount > self.resources[name]:
                raise BadRequest(
                    f"claims {name}={amount} exceeds this peer's {self.resources[name]}"
                )

    def admit(self, job: Job) -> str | None:
        reserved = False
        if job.memory_mb:
            try:
                self.allocator.allocate(job.task_id, job.memory_mb)
                reserved = True
            except NoFit as exc:
                return f"waiting for memory: {exc}"
        if job.claims:
            try:
                self.banker.declare(job.task_id, self.vector(job.claims, "claims"))
                if job.holds:
                    result = self.banker.request(job.task_id, self.vector(job.holds, "holds"))
                    if not result.granted:
                        self.banker.finish(job.task_id)
                        raise BadRequest(result.reason)
            except PeerOSError as exc:
                if reserved:
                    self.allocator.free(job.task_id)
                return f"Banker's algorithm: {exc.message}"
        return None

    def on_finish(self, job: Job, status: str) -> None:
        freed = False
        if job.admitted:
            if job.memory_mb:
                self.allocator.free(job.task_id)
                freed = True
            if job.claims:
                self.banker.finish(job.task_id)
                freed = True
        for callback in self.on_task_end:
            callback(job.task_id)
        if job.task_id in self.table:
            self.table.exit(job.task_id, status)
            killed = job.task_id in self._reap_on_exit
            self._reap_on_exit.discard(job.task_id)
            if job.parent is None or killed:  # a top-level result goes straight back
                self.table.collect(job.task_id)
        if freed:  # held jobs may fit now
            self.scheduler.kick()

    # --- processes --------------------------------------------------------------------

    def create_plain(self, name: str, parent: str | None, group: str | None) -> dict[str, Any]:
        pid = f"p{int(time.time() * 1000) % 10**10:010d}{len(self.table):04d}"
        proc = self.table.create(pid, name, time.time(), parent=parent, group=group, kind="plain")
        self.table.move(pid, "READY")
        return self.table.get(proc.pid).to_dict()

    def kill_local(self, pids: list[str], reason: str) -> list[str]:
        """Kill the given processes of this peer; returns those it found."""
        killed = []
        for pid in pids:
            if pid not in self.table:
                continue
            proc = self.table.get(pid)
            if proc.kind == "task" and proc.state == "ZOMBIE":
                self.table.collect(pid)
            elif proc.kind == "task" and self.scheduler.cancel(pid):
                self._reap_on_exit.add(pid)
            elif proc.kind == "plain":
                self.table.exit(pid, "KILLED")
                self.table.collect(pid)
            killed.append(pid)
        return killed

    def collect(self, pid: str) -> None:
        if pid in self.table and self.table.get(pid).state == "ZOMBIE":
            self.table.collect(pid)

    # --- resources --------------------------------------------------------------------

    def release(self, task_id: str, resources: dict[str, int]) -> None:
        self.banker.release(task_id, self.vector(resources, "release"))
        self.scheduler.kick()

    async def request(self, task_id: str, resources: dict[str, int], timeout: float) -> None:
        """Block (as the task) until the Banker grants ``resources`` safely."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.banker.request(task_id, self.vector(resources, "request"))
            if result.granted:
                return
            if not result.wait:
                raise BadRequest(result.reason)
            if time.monotonic() > deadline:
                raise PeerOSError(f"resource request timed out: {result.reason}")
            await asyncio.sleep(0.05)  # retried as resources come back

    def state(self) -> dict[str, Any]:
        return {
            "processes": self.table.snapshot(),
            "allocator": {**self.allocator.to_dict(), "stats": self.allocator.stats()},
            "bankers": {**self.banker.snapshot(), "safe": self.banker.is_safe()[0]},
        }

    def find(self, pid: str) -> dict[str, Any]:
        if pid not in self.table:
            raise NotFound(f"no process {pid} on peer {self.peer_id}")
        return self.table.get(pid).to_dict()
