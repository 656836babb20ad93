"""``client.ipc``: semaphores and message queues hosted on a peer.

``client.ipc.queue_create("jobs", capacity=5)``, ``client.ipc.send("jobs", {"n": 1})``,
``client.ipc.recv("jobs").message``, ``client.ipc.sem_wait("lock")``, and
``client.ipc.on(peer)`` for objects hosted on another peer (a peer id or HOST:PORT).
Blocking calls wait up to ``timeout`` seconds on the hosting peer, then raise
:class:`~peeros.errors.Timeout`. ``party`` names the caller (tasks pass their task id);
left out, each call is a fresh ``client:<random>``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from peeros.net.client import parse
from peeros.protocol import (
    IpcAcquired,
    IpcDeleted,
    IpcList,
    IpcQueueInfo,
    IpcReceived,
    IpcSemaphoreInfo,
    IpcSent,
    IpcSignalled,
    IpcUndone,
)

if TYPE_CHECKING:
    from peeros.client import AsyncClient

M = TypeVar("M", bound=BaseModel)

#: Seconds the HTTP request may outlast the operation's own timeout (two hops with ``on``).
_SLACK = 10.0


class AsyncIpc:
    def __init__(self, client: AsyncClient, on: str | None = None) -> None:
        self._client = client
        self._on = on

    def on(self, peer: str) -> AsyncIpc:
        """The objects hosted on another peer (peer id or HOST:PORT)."""
        return AsyncIpc(self._client, peer)

    async def _call(
        self, op: str, reply: type[M], body: dict[str, Any], timeout: float | None = None
    ) -> M:
        body = {k: v for k, v in body.items() if v is not None or k == "message"}
        if self._on:
            body["on"] = self._on
        if timeout is not None:
            body["timeout"] = timeout
        wait = None if timeout is None else timeout + _SLACK
        data = await self._client.request("POST", f"/v1/ipc/{op}", body, timeout=wait)
        return parse(reply, data, self._client.endpoint.url)

    async def sem_create(self, name: str, value: int = 1, binary: bool = False) -> IpcSemaphoreInfo:
        body = {"name": name, "value": value, "binary": binary}
        return await self._call("sem-create", IpcSemaphoreInfo, body)

    async def sem_wait(
        self, name: str, timeout: float = 30.0, party: str | None = None
    ) -> IpcAcquired:
        """P: returns once a unit is held (FIFO among waiters), else raises Timeout."""
        return await self._call("sem-wait", IpcAcquired, {"name": name, "party": party}, timeout)

    async def sem_signal(self, name: str, party: str | None = None) -> IpcSignalled:
        """V: gives a unit back, waking the first waiter if any."""
        return await self._call("sem-signal", IpcSignalled, {"name": name, "party": party})

    async def sem_list(self) -> list[IpcSemaphoreInfo]:
        return (await self._call("sem-list", IpcList, {})).semaphores

    async def queue_create(self, name: str, capacity: int = 10) -> IpcQueueInfo:
        body = {"name": name, "capacity": capacity}
        return await self._call("queue-create", IpcQueueInfo, body)

    async def send(
        self, name: str, message: Any, timeout: float = 30.0, party: str | None = None
    ) -> IpcSent:
        """Send any JSON value; waits for room while the queue is full. ``name="*"``
        sends a copy to every queue on the peer and never waits."""
        body = {"name": name, "message": message, "party": party}
        return await self._call("send", IpcSent, body, timeout)

    async def recv(self, name: str, timeout: float = 30.0, party: str | None = None) -> IpcReceived:
        """The oldest message (``.message``, ``.sender``); waits while the queue is empty."""
        return await self._call("recv", IpcReceived, {"name": name, "party": party}, timeout)

    async def queue_list(self) -> list[IpcQueueInfo]:
        return (await self._call("queue-list", IpcList, {})).queues

    async def list(self) -> IpcList:
        return await self._call("list", IpcList, {})

    async def delete(self, name: str) -> IpcDeleted:
        return await self._call("delete", IpcDeleted, {"name": name})

    async def undo(self, party: str) -> IpcUndone:
        """``party`` is gone: drop its waits and give back the units it holds."""
        return await self._call("undo", IpcUndone, {"party": party})


class Ipc:
    """Blocking face of :class:`AsyncIpc` (safe to use from several threads)."""

    def __init__(self, inner: AsyncIpc, run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
        self._inner = inner
        self._run = run

    def on(self, peer: str) -> Ipc:
        return Ipc(self._inner.on(peer), self._run)

    def sem_create(self, name: str, value: int = 1, binary: bool = False) -> IpcSemaphoreInfo:
        result: IpcSemaphoreInfo = self._run(self._inner.sem_create(name, value, binary))
        return result

    def sem_wait(self, name: str, timeout: float = 30.0, party: str | None = None) -> IpcAcquired:
        result: IpcAcquired = self._run(self._inner.sem_wait(name, timeout, party))
        return result

    def sem_signal(self, name: str, party: str | None = None) -> IpcSignalled:
        result: IpcSignalled = self._run(self._inner.sem_signal(name, party))
        return result

    def sem_list(self) -> list[IpcSemaphoreInfo]:
        result: list[IpcSemaphoreInfo] = self._run(self._inner.sem_list())
        return result

    def queue_create(self, name: str, capacity: int = 10) -> IpcQueueInfo:
        result: IpcQueueInfo = self._run(self._inner.queue_create(name, capacity))
        return result

    def send(
        self, name: str, message: Any, timeout: float = 30.0, party: str | None = None
    ) -> IpcSent:
        result: IpcSent = self._run(self._inner.send(name, message, timeout, party))
        return result

    def recv(self, name: str, timeout: float = 30.0, party: str | None = None) -> IpcReceived:
        result: IpcReceived = self._run(self._inner.recv(name, timeout, party))
        return result

    def queue_list(self) -> list[IpcQueueInfo]:
        result: list[IpcQueueInfo] = self._run(self._inner.queue_list())
        return result

    def list(self) -> IpcList:
        result: IpcList = self._run(self._inner.list())
        return result

    def delete(self, name: str) -> IpcDeleted:
        result: IpcDeleted = self._run(self._inner.delete(name))
        return result

    def undo(self, party: str) -> IpcUndone:
        result: IpcUndone = self._run(self._inner.undo(party))
        return result
