"""``client.kernel``: processes, the memory allocator, Banker's state and deadlocks."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from peeros.client import AsyncClient


class AsyncKernel:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def processes(self) -> dict[str, Any]:
        """Every process in the cluster, flat (``processes``) and as a ``tree``."""
        result: dict[str, Any] = await self._c.request("GET", "/v1/proc")
        return result

    async def create(
        self, name: str, parent: str | None = None, group: str | None = None
    ) -> dict[str, Any]:
        body = {"name": name, "parent": parent, "group": group}
        result: dict[str, Any] = await self._c.request("POST", "/v1/proc/create", body)
        return result

    async def kill(self, pid: str, group: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = await self._c.request(
            "POST", "/v1/proc/kill", {"pid": pid, "group": group}
        )
        return result

    async def state(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._c.request("GET", "/v1/kernel")
        return result

    async def alloc(self, op: str, **body: Any) -> dict[str, Any]:
        """``op`` is ``show``, ``alloc`` (name, size), ``free`` (name) or ``policy``."""
        if op == "show":
            result: dict[str, Any] = await self._c.request("GET", "/v1/alloc")
        else:
            result = await self._c.request("POST", f"/v1/alloc/{op}", body)
        return result

    async def deadlock(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._c.request("GET", "/v1/deadlock")
        return result

    async def resolve(self, victim: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._c.request(
            "POST", "/v1/deadlock/resolve", {"victim": victim}
        )
        return result


class Kernel:
    """Blocking face of :class:`AsyncKernel`."""

    def __init__(self, inner: AsyncKernel, run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
        self._inner = inner
        self._run = run

    def processes(self) -> dict[str, Any]:
        return self._run(self._inner.processes())  # type: ignore[no-any-return]

    def create(
        self, name: str, parent: str | None = None, group: str | None = None
    ) -> dict[str, Any]:
        return self._run(self._inner.create(name, parent, group))  # type: ignore[no-any-return]

    def kill(self, pid: str, group: bool = False) -> dict[str, Any]:
        return self._run(self._inner.kill(pid, group))  # type: ignore[no-any-return]

    def state(self) -> dict[str, Any]:
        return self._run(self._inner.state())  # type: ignore[no-any-return]

    def alloc(self, op: str, **body: Any) -> dict[str, Any]:
        return self._run(self._inner.alloc(op, **body))  # type: ignore[no-any-return]

    def deadlock(self) -> dict[str, Any]:
        return self._run(self._inner.deadlock())  # type: ignore[no-any-return]

    def resolve(self, victim: str) -> dict[str, Any]:
        return self._run(self._inner.resolve(victim))  # type: ignore[no-any-return]
