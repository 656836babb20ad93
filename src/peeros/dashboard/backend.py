"""The dashboard's one connection to its peer: a :class:`peeros.AsyncClient`.

The client is made on first use and dropped whenever the peer cannot be reached, so a
dashboard started before its peer (``peeros peer --web-ui``), or kept across a peer
restart on another API port, finds the peer again through ``api.json``.
A background sampler keeps the cluster's load over time for the Cluster page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from peeros.client import AsyncClient
from peeros.errors import Unavailable
from peeros.protocol import PeerInfo

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Samples of the cluster's load kept for the chart (one per SAMPLE_EVERY seconds).
HISTORY_LEN = 300
SAMPLE_EVERY = 2.0


def peer_load(p: PeerInfo) -> float:
    """Work per worker slot, as placement sees it: (queued + running) / slots."""
    return round((p.load.queued + p.load.running) / max(1, p.load.slots), 3)


@dataclass
class Backend:
    peer: str | None = None
    token: str | None = None
    data_dir: Path | None = None
    timeout: float = 30.0
    #: (unix time, {peer id: load}) samples, oldest first.
    load_history: deque[tuple[float, dict[str, float]]] = field(
        default_factory=lambda: deque(maxlen=HISTORY_LEN)
    )
    _client: AsyncClient | None = None

    def client(self) -> AsyncClient:
        if self._client is None:
            self._client = AsyncClient(self.peer, self.token, self.data_dir, self.timeout)
        return self._client

    async def reset(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def call(self, fn: Callable[[AsyncClient], Awaitable[T]]) -> T:
        """``await fn(client)``; on an unreachable peer, forget the client and re-raise."""
        try:
            return await fn(self.client())
        except Unavailable:
            await self.reset()
            raise

    async def sample_load(self) -> None:
        peers = await self.call(lambda c: c.peers())
        self.load_history.append((time.time(), {p.peer_id: peer_load(p) for p in peers}))

    async def sample_forever(self) -> None:
        while True:
            try:
                await self.sample_load()
            except Exception as exc:  # the peer may be down for a while; keep sampling
                log.debug("load sample failed: %s", exc)
            await asyncio.sleep(SAMPLE_EVERY)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.reset()


_backend: Backend | None = None


def configure(backend: Backend) -> None:
    global _backend
    _backend = backend


def backend() -> Backend:
    if _backend is None:
        raise RuntimeError("the dashboard backend is not configured (start it with serve())")
    return _backend
