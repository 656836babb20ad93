"""``client.memory``: a peer's key-value store as a Python mapping.

``client.memory["k"] = v``, ``client.memory["k"]``, ``del client.memory["k"]`` and
``client.memory.on(peer)["k"]`` (a peer id or HOST:PORT). A missing key raises
:class:`MissingKey`, which is both a ``KeyError`` and a PeerOS ``NotFound``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from peeros.errors import NotFound
from peeros.net.client import parse
from peeros.protocol import MemoryEntry, MemoryKeys

if TYPE_CHECKING:
    from peeros.client import AsyncClient

T = TypeVar("T")


class MissingKey(NotFound, KeyError):
    """The key does not exist on that peer."""

    def __str__(self) -> str:
        return self.message


class AsyncMemory:
    def __init__(self, client: AsyncClient, on: str | None = None) -> None:
        self._client = client
        self._on = on

    def on(self, peer: str) -> AsyncMemory:
        """The store of another peer (peer id or HOST:PORT)."""
        return AsyncMemory(self._client, peer)

    async def _call(self, op: str, body: dict[str, Any]) -> Any:
        if self._on:
            body["on"] = self._on
        return await self._client.request("POST", f"/v1/memory/{op}", body)

    async def entry(self, key: str) -> MemoryEntry:
        """The value with its remaining TTL and the peer that holds it."""
        try:
            data = await self._call("get", {"key": key})
        except NotFound as exc:
            raise MissingKey(exc.message) from None
        return parse(MemoryEntry, data, self._client.endpoint.url)

    async def get(self, key: str, default: Any = None) -> Any:
        try:
            return (await self.entry(key)).value
        except MissingKey:
            return default

    async def set(self, key: str, value: Any, ttl: float | None = None) -> MemoryEntry:
        body: dict[str, Any] = {"key": key, "value": value}
        if ttl is not None:
            body["ttl"] = ttl
        return parse(MemoryEntry, await self._call("set", body), self._client.endpoint.url)

    async def delete(self, key: str) -> None:
        try:
            await self._call("delete", {"key": key})
        except NotFound as exc:
            raise MissingKey(exc.message) from None

    async def keys(self, pattern: str = "*") -> list[str]:
        data = await self._call("keys", {"pattern": pattern})
        return parse(MemoryKeys, data, self._client.endpoint.url).keys

    async def incr(self, key: str, by: int = 1) -> int:
        data = await self._call("incr", {"key": key, "by": by})
        value: int = parse(MemoryEntry, data, self._client.endpoint.url).value
        return value


class Memory:
    """Blocking face of :class:`AsyncMemory`, usable like a dict."""

    def __init__(self, inner: AsyncMemory, run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
        self._inner = inner
        self._run = run

    def on(self, peer: str) -> Memory:
        return Memory(self._inner.on(peer), self._run)

    def entry(self, key: str) -> MemoryEntry:
        result: MemoryEntry = self._run(self._inner.entry(key))
        return result

    def get(self, key: str, default: Any = None) -> Any:
        return self._run(self._inner.get(key, default))

    def set(self, key: str, value: Any, ttl: float | None = None) -> MemoryEntry:
        result: MemoryEntry = self._run(self._inner.set(key, value, ttl))
        return result

    def delete(self, key: str) -> None:
        self._run(self._inner.delete(key))

    def keys(self, pattern: str = "*") -> list[str]:
        result: list[str] = self._run(self._inner.keys(pattern))
        return result

    def incr(self, key: str, by: int = 1) -> int:
        result: int = self._run(self._inner.incr(key, by))
        return result

    def __getitem__(self, key: str) -> Any:
        return self.entry(key).value

    def __setitem__(self, key: str, value: Any) -> None:
        self.set(key, value)

    def __delitem__(self, key: str) -> None:
        self.delete(key)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        try:
            self.entry(key)
        except MissingKey:
            return False
        return True
