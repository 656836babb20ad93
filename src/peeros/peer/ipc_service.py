"""IPC on a peer: the pure registry of :mod:`peeros.kernel.ipc`, made to block.

The registry decides; this layer only parks a caller on an asyncio future when the
registry queued it, and resolves the futures of the parties a decision woke. Every wait
has a timeout: when it runs out the party leaves the registry's queue *before* the error
is raised, so no waiter is left behind. A grant that lands in the same instant as the
deadline wins (the caller got the unit or message, so it must be told).

Each operation is ``POST /v1/ipc/{op}`` on both planes, one table below. A caller that
names no party is ``client:<random>`` for that one call (semaphores are unowned, so a
signal from another call still returns the unit).

Known limit: aiohttp does not cancel a handler when its client disconnects, so a caller
that goes away while blocked stays queued until its timeout; tasks that die are cleaned
up by :meth:`IpcService.undo`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from peeros.errors import Conflict, NotFound, Timeout
from peeros.kernel.ipc import BROADCAST, IpcRegistry, UnknownIpc
from peeros.protocol import (
    IpcAcquired,
    IpcDeleted,
    IpcList,
    IpcListRequest,
    IpcNameRequest,
    IpcQueueCreateRequest,
    IpcQueueInfo,
    IpcReceived,
    IpcSemaphoreInfo,
    IpcSemCreateRequest,
    IpcSendRequest,
    IpcSent,
    IpcSignalled,
    IpcSignalRequest,
    IpcUndone,
    IpcUndoRequest,
    IpcWaitRequest,
)

log = logging.getLogger(__name__)

#: Extra seconds a transport waits beyond an operation's own timeout, per hop.
TRANSPORT_SLACK = 5.0

Handler = Callable[[Any], Awaitable[BaseModel]]


def new_client_party() -> str:
    return f"client:{secrets.token_hex(8)}"


class IpcService:
    """The named semaphores and queues this peer hosts."""

    def __init__(self, peer_id: str) -> None:
        self.peer_id = peer_id
        self.registry = IpcRegistry(where=f" on peer {peer_id}")
        #: (object name, party) → the future its blocked call awaits
        self._pending: dict[tuple[str, str], asyncio.Future[Any]] = {}
        #: op name → (request model, handler(request) → reply model)
        self.ops: dict[str, tuple[type[BaseModel], Handler]] = {
            "sem-create": (IpcSemCreateRequest, self._sem_create),
            "sem-wait": (IpcWaitRequest, self._sem_wait),
            "sem-signal": (IpcSignalRequest, self._sem_signal),
            "sem-list": (IpcListRequest, self._sem_list),
            "queue-create": (IpcQueueCreateRequest, self._queue_create),
            "send": (IpcSendRequest, self._send),
            "recv": (IpcWaitRequest, self._recv),
            "queue-list": (IpcListRequest, self._queue_list),
            "list": (IpcListRequest, self._list),
            "delete": (IpcNameRequest, self._delete),
            "undo": (IpcUndoRequest, self._undo),
        }

    # --- the wire: one table ---------------------------------------------------------

    def model_for(self, op: str) -> type[BaseModel]:
        if op not in self.ops:
            raise NotFound(f"no IPC operation {op!r}; expected one of {sorted(self.ops)}")
        return self.ops[op][0]

    @staticmethod
    def prepare(req: Any) -> Any:
        """The request as the hosting peer runs it: no ``on``, and a party always named."""
        update: dict[str, Any] = {"on": None}
        if "party" in type(req).model_fields and req.party is None:
            update["party"] = new_client_party()
        return req.model_copy(update=update)

    @staticmethod
    def transport_timeout(req: Any) -> float | None:
        """How long a forwarding hop waits for a reply (None: its default)."""
        timeout = getattr(req, "timeout", None)
        return None if timeout is None else float(timeout) + TRANSPORT_SLACK

    async def run(self, op: str, req: BaseModel) -> BaseModel:
        return await self.ops[op][1](req)

    async def _sem_create(self, req: IpcSemCreateRequest) -> IpcSemaphoreInfo:
        self.registry.create_semaphore(req.name, req.value, req.binary)
        return self.semaphore_info(req.name)

    async def _sem_wait(self, req: IpcWaitRequest) -> IpcAcquired:
        assert req.party is not None
        await self.sem_wait(req.name, req.party, req.timeout)
        return IpcAcquired(name=req.name, party=req.party, peer_id=self.peer_id)

    async def _sem_signal(self, req: IpcSignalRequest) -> IpcSignalled:
        assert req.party is not None
        granted = self.sem_signal(req.name, req.party)
        value = self.registry.semaphore(req.name).value
        return IpcSignalled(
            name=req.name, party=req.party, granted=granted, value=value, peer_id=self.peer_id
        )

    async def _queue_create(self, req: IpcQueueCreateRequest) -> IpcQueueInfo:
        self.registry.create_queue(req.name, req.capacity)
        return IpcQueueInfo(**self.registry.queue(req.name).snapshot(), peer_id=self.peer_id)

    async def _send(self, req: IpcSendRequest) -> IpcSent:
        assert req.party is not None
        return await self.queue_send(req.name, req.party, req.message, req.timeout)

    async def _recv(self, req: IpcWaitRequest) -> IpcReceived:
        assert req.party is not None
        return await self.queue_recv(req.name, req.party, req.timeout)

    async def _sem_list(self, _req: IpcListRequest) -> IpcList:
        return self.listing(queues=False)

    async def _queue_list(self, _req: IpcListRequest) -> IpcList:
        return self.listing(semaphores=False)

    async def _list(self, _req: IpcListRequest) -> IpcList:
        return self.listing()

    async def _delete(self, req: IpcNameRequest) -> IpcDeleted:
        return self.delete(req.name)

    async def _undo(self, req: IpcUndoRequest) -> IpcUndone:
        granted = self.undo(req.party)
        return IpcUndone(party=req.party, granted=granted, peer_id=self.peer_id)

    # --- the operations --------------------------------------------------------------

    def semaphore_info(self, name: str) -> IpcSemaphoreInfo:
        return IpcSemaphoreInfo(**self.registry.semaphore(name).snapshot(), peer_id=self.peer_id)

    def listing(self, semaphores: bool = True, queues: bool = True) -> IpcList:
        snap = self.registry.snapshot()
        return IpcList(
            semaphores=[
                IpcSemaphoreInfo(**s, peer_id=self.peer_id)
                for s in (snap["semaphores"] if semaphores else [])
            ],
            queues=[
                IpcQueueInfo(**q, peer_id=self.peer_id) for q in (snap["queues"] if queues else [])
            ],
            peer_id=self.peer_id,
        )

    async def sem_wait(self, name: str, waiter: str, timeout: float) -> None:
        """P on semaphore ``name``: returns once ``waiter`` holds a unit, else raises
        :class:`~peeros.errors.Timeout` (and ``waiter`` is no longer queued)."""
        if self.registry.semaphore(name).wait(waiter):
            return
        await self._block(name, waiter, timeout, f"semaphore {name!r}")

    def sem_signal(self, name: str, by: str) -> list[str]:
        """V on semaphore ``name``; the waiters it woke (FIFO)."""
        granted = self.registry.semaphore(name).signal(by)
        for waiter in granted:
            self._wake(name, waiter, None)
        return granted

    async def queue_send(self, name: str, sender: str, message: Any, timeout: float) -> IpcSent:
        """Send to queue ``name`` (or a copy to every queue, never waiting, for ``"*"``);
        waits up to ``timeout`` for room when the queue is full."""
        if name == BROADCAST:
            sent = self.registry.broadcast(sender, message)
            for queue, result in sent.items():
                if result.receiver is not None:
                    self._wake(queue, result.receiver, (sender, message))
            return IpcSent(
                name=name, party=sender, status="broadcast", queues=list(sent), peer_id=self.peer_id
            )
        result = self.registry.queue(name).send(sender, message)
        if result.status == "delivered":
            assert result.receiver is not None
            self._wake(name, result.receiver, (sender, message))
        elif result.status == "wait":
            await self._block(name, sender, timeout, f"room in queue {name!r}")
        status = "delivered" if result.status == "delivered" else "queued"
        return IpcSent(
            name=name, party=sender, status=status, receiver=result.receiver, peer_id=self.peer_id
        )

    async def queue_recv(self, name: str, receiver: str, timeout: float) -> IpcReceived:
        """Receive the oldest message of queue ``name``, waiting up to ``timeout``."""
        result = self.registry.queue(name).receive(receiver)
        if result.status == "wait":
            sender, message = await self._block(name, receiver, timeout, f"queue {name!r}")
        else:
            sender, message = result.sender, result.message
            if result.released is not None:
                self._wake(name, result.released, None)
        return IpcReceived(
            name=name, party=receiver, message=message, sender=sender, peer_id=self.peer_id
        )

    def delete(self, name: str) -> IpcDeleted:
        kind, waiting = self.registry.delete(name)
        for party in waiting:
            self._fail(
                name, party, UnknownIpc(f"{kind} {name!r} was deleted on peer {self.peer_id}")
            )
        return IpcDeleted(name=name, kind=kind, woken=waiting, peer_id=self.peer_id)

    def undo(self, party: str) -> list[tuple[str, str]]:
        """``party`` (a task) ended: it leaves every queue and gives back every unit it
        holds (SysV SEM_UNDO). Returns ``(semaphore, waiter)`` for each waiter woken."""
        granted = self.registry.undo(party)
        for key in [k for k in self._pending if k[1] == party]:
            self._fail(*key, Conflict(f"{party} was undone on peer {self.peer_id}"))
        for name, waiter in granted:
            self._wake(name, waiter, None)
        return granted

    def wait_edges(self) -> list[tuple[str, str, str]]:
        """``(waiter, holder, "sem:NAME")`` edges for the wait-for graph."""
        return self.registry.wait_edges()

    # --- parking and waking ----------------------------------------------------------

    async def _block(self, name: str, party: str, timeout: float, what: str) -> Any:
        """Park ``party`` (already queued in the registry) until woken or ``timeout``."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[(name, party)] = fut
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(fut)
        except TimeoutError:
            if fut.done():  # woken at the deadline: the grant stands
                return fut.result()
            self.registry.cancel(name, party)
            raise Timeout(
                f"timed out after {timeout:g}s waiting for {what} on peer {self.peer_id}; "
                f"{party} is no longer waiting"
            ) from None
        except asyncio.CancelledError:
            if not fut.done():
                self.registry.cancel(name, party)
            raise
        finally:
            if self._pending.get((name, party)) is fut:
                del self._pending[(name, party)]

    def _wake(self, name: str, party: str, value: Any) -> None:
        fut = self._pending.get((name, party))
        if fut is not None and not fut.done():
            fut.set_result(value)
        else:  # only the service queues parties, so every queued party has a future
            log.warning("IPC: %s was woken on %s but nobody waits for it", party, name)

    def _fail(self, name: str, party: str, exc: Exception) -> None:
        fut = self._pending.get((name, party))
        if fut is not None and not fut.done():
            fut.set_exception(exc)
