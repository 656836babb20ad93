"""System calls: what task code asks of its peer through ``peeros.task``.

Each call arrives on the worker's pipe (see ``WorkerPool._syscall``) with the calling
task's pid. Calls that may wait are wrapped in :meth:`Syscalls.blocking`: if the answer
does not come at once, the task leaves RUNNING for WAITING and gives its CPU slot away;
when the answer is ready it becomes READY and returns only once it is dispatched again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from peeros.errors import BadRequest, Forbidden, PeerOSError
from peeros.net.server import describe_validation
from peeros.protocol import IPC_MAX_TIMEOUT, IpcUndoRequest, TaskRequest

if TYPE_CHECKING:
    from peeros.peer.node import PeerNode

T = TypeVar("T")
log = logging.getLogger(__name__)
IPC_OPS = ("sem-create", "sem-wait", "sem-signal", "queue-create", "send", "recv")
BLOCKING_IPC = frozenset({"sem-wait", "send", "recv"})
#: How long a call may take before its task is counted as WAITING.
BLOCK_GRACE = 0.01
DEFAULT_WAIT = 3600.0


class Syscalls:
    def __init__(self, node: PeerNode) -> None:
        self.node = node
        self.table: dict[str, Callable[[str, dict[str, Any]], Awaitable[Any]]] = {
            "info": self.info,
            "spawn": self.spawn,
            "wait": self.wait,
            "request": self.request,
            "release": self.release,
        }
        for op in IPC_OPS:
            self.table[op] = self._ipc_handler(op)
        #: Peers whose IPC objects a task used: they are told to undo it when it ends.
        self.touched: dict[str, set[str]] = {}
        self._undo_tasks: set[asyncio.Task[None]] = set()

    def _ipc_handler(self, op: str) -> Callable[[str, dict[str, Any]], Awaitable[Any]]:
        async def handler(task_id: str, args: dict[str, Any]) -> Any:
            return await self.ipc(op, task_id, args)

        return handler

    async def ipc(self, op: str, task_id: str, args: dict[str, Any]) -> Any:
        """Semaphores and queues from a task: the task is the waiting/holding party."""
        model = self.node.ipc.model_for(op)
        body = dict(args)
        if "party" in model.model_fields:
            body["party"] = task_id
        if "timeout" in model.model_fields and body.get("timeout") is None:
            body["timeout"] = IPC_MAX_TIMEOUT
        try:
            req = model.model_validate(body)
        except ValidationError as exc:
            raise BadRequest(f"{op}: {describe_validation(exc)}") from exc
        target = await self.node.resolve(body.get("on"))
        if target is not None:
            self.touched.setdefault(task_id, set()).add(target)
        call = self.node.ipc_call(op, req)
        if op in BLOCKING_IPC:
            reply = await self.blocking(task_id, f"{op}:{body.get('name')}", call)
        else:
            reply = await call
        data = reply.model_dump(mode="json") if hasattr(reply, "model_dump") else reply
        return data.get("message") if op == "recv" else data

    def task_ended(self, task_id: str) -> None:
        """SEM_UNDO: a task that ends gives back what it held, here and on other peers."""
        self.node.ipc.undo(task_id)
        for address in self.touched.pop(task_id, set()):
            task = asyncio.get_running_loop().create_task(self._undo_remote(address, task_id))
            self._undo_tasks.add(task)
            task.add_done_callback(self._undo_tasks.discard)

    async def _undo_remote(self, address: str, task_id: str) -> None:
        assert self.node.client is not None
        try:
            await self.node.client.request(
                address, "POST", "/v1/ipc/undo", IpcUndoRequest(party=task_id), timeout=10
            )
        except PeerOSError as exc:
            log.warning("could not undo %s on %s: %s", task_id, address, exc)

    async def __call__(self, task_id: str, owner: str, op: str, args: dict[str, Any]) -> Any:
        handler = self.table.get(op)
        if handler is None:
            raise BadRequest(f"unknown system call {op!r}")
        return await handler(task_id, args)

    async def blocking(self, task_id: str, label: str, work: Awaitable[T]) -> T:
        """Run ``work``; if it does not finish at once, the task is WAITING meanwhile."""
        future = asyncio.ensure_future(work)
        done, _ = await asyncio.wait({future}, timeout=BLOCK_GRACE)
        if done:
            return future.result()
        scheduler = self.node.scheduler
        scheduler.block(task_id, label)
        try:
            result = await future
        except asyncio.CancelledError:
            scheduler.wake(task_id)  # the peer is stopping: nothing will dispatch it again
            raise
        except BaseException:
            await scheduler.wake(task_id)
            raise
        await scheduler.wake(task_id)
        return result

    async def info(self, task_id: str, _args: dict[str, Any]) -> dict[str, Any]:
        proc = self.node.kernel.find(task_id)
        return {
            "pid": task_id,
            "parent": proc["parent"],
            "group": proc["group"],
            "peer": self.node.peer_id,
        }

    async def spawn(self, task_id: str, args: dict[str, Any]) -> str:
        options = args.get("options") or {}
        if not isinstance(options, dict):
            raise BadRequest("spawn options must be an object")
        try:
            req = TaskRequest(
                program=args.get("program"),
                function=args.get("function"),
                args=args.get("args") or [],
                payload=args.get("payload"),
                **options,
            )
        except ValueError as exc:
            raise BadRequest(f"spawn: {exc}") from exc
        group = self.node.kernel.find(task_id)["group"]
        target = await self.node.resolve(args.get("on"))
        (child,) = self.node.tasks.submit([req], parent=task_id, group=group, on=target)
        return child

    async def wait(self, task_id: str, args: dict[str, Any]) -> dict[str, Any]:
        pid = str(args.get("pid", ""))
        tracked = self.node.tasks.tracked.get(pid)
        if tracked is None or tracked.parent != task_id:
            raise Forbidden(f"{pid} is not a child of this task")
        timeout = float(args.get("timeout") or DEFAULT_WAIT)
        got = await self.blocking(
            task_id, f"child:{pid}", self.node.tasks.wait([pid], timeout, True)
        )
        if got.pending:
            raise PeerOSError(f"child {pid} did not finish within {timeout:g}s")
        result = got.done[0]
        await self.node.collect(pid, tracked.address)
        if result.status != "DONE":
            raise PeerOSError(f"child {pid} {result.status}: {result.error}")
        return {"value": result.result, "payload": result.result_payload}

    async def request(self, task_id: str, args: dict[str, Any]) -> None:
        resources = args.get("resources")
        if not isinstance(resources, dict):
            raise BadRequest("request needs resources: {name: count}")
        timeout = float(args.get("timeout") or DEFAULT_WAIT)
        await self.blocking(
            task_id, "resources", self.node.kernel.request(task_id, resources, timeout)
        )

    async def release(self, task_id: str, args: dict[str, Any]) -> None:
        resources = args.get("resources")
        if not isinstance(resources, dict):
            raise BadRequest("release needs resources: {name: count}")
        self.node.kernel.release(task_id, resources)
