"""``Share(client)``: shared folders, index lookups, verified downloads and their stats.

``Share(client).lookup("song", mode="substring")``, ``.download(name="x.bin")``,
``.list("downloaded")``, ``.rescan()``, ``.stats()``. A download runs on the peer (it
holds the cluster credentials); this side follows its progress lines, and leaving
(Ctrl-C, kill) stops it there: the next ``download`` of the same file resumes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp

from peeros.errors import PeerOSError, Unavailable, from_wire
from peeros.net.client import json_body, parse, raise_for_error
from peeros.protocol import (
    DownloadResult,
    FloodHits,
    FloodStats,
    ShareHits,
    ShareListing,
    ShareRescan,
    ShareStats,
)

if TYPE_CHECKING:
    from peeros.client import AsyncClient, Client

#: ``progress(done_bytes, total_bytes)``
DownloadProgress = Callable[[int, int], None]


class AsyncShare:
    def __init__(self, client: AsyncClient) -> None:
        self.client = client

    async def list(self, kind: str = "local") -> ShareListing:
        data = await self.client.request("GET", f"/v1/share/files?kind={kind}")
        return parse(ShareListing, data, self.client.endpoint.url)

    async def rescan(self) -> ShareRescan:
        data = await self.client.request("POST", "/v1/share/rescan")
        return parse(ShareRescan, data, self.client.endpoint.url)

    async def lookup(
        self, query: str = "", mode: str = "exact", sha256: str | None = None
    ) -> ShareHits:
        # Validated by the peer, whose 400 names the problem.
        req = {"query": query, "mode": mode, "sha256": sha256}
        data = await self.client.request("POST", "/v1/share/lookup", req)
        return parse(ShareHits, data, self.client.endpoint.url)

    async def stats(self) -> ShareStats:
        data = await self.client.request("GET", "/v1/share/stats")
        return parse(ShareStats, data, self.client.endpoint.url)

    async def search(
        self, query: str = "", mode: str = "exact", sha256: str | None = None, ttl: int = 7
    ) -> FloodHits:
        """Flooding search (no tracker): the query spreads ``ttl`` hops from this peer."""
        req = {"query": query, "mode": mode, "sha256": sha256, "ttl": ttl}
        data = await self.client.request("POST", "/v1/flood/search", req, timeout=120)
        return parse(FloodHits, data, self.client.endpoint.url)

    async def flood_stats(self) -> FloodStats:
        data = await self.client.request("GET", "/v1/flood/stats")
        return parse(FloodStats, data, self.client.endpoint.url)

    async def download(
        self,
        name: str | None = None,
        sha256: str | None = None,
        save_as: str | None = None,
        progress: DownloadProgress | None = None,
    ) -> DownloadResult:
        req = {"name": name, "sha256": sha256, "save_as": save_as}
        url = self.client.endpoint.url + "/v1/share/download"
        body = json_body(json.dumps(req).encode())
        timeout = aiohttp.ClientTimeout(total=None, sock_read=300.0)
        last: dict[str, Any] | None = None
        try:
            session = self.client._get_session()
            async with session.post(url, timeout=timeout, **body) as resp:
                await raise_for_error(resp)
                async for raw in resp.content:
                    event = json.loads(raw)
                    if event["event"] == "progress" and progress is not None:
                        progress(event["done"], event["total"])
                    elif event["event"] in ("done", "error"):
                        last = event
        except PeerOSError:
            raise
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            raise Unavailable(f"the download was cut off: {exc!r}") from exc
        if last is None:
            raise Unavailable("the peer ended the download without a result")
        if last["event"] == "error":
            raise from_wire(500, last["code"], last["message"])
        return parse(DownloadResult, last["result"], self.client.endpoint.url)


class Share:
    """The blocking twin of :class:`AsyncShare`, over a :class:`~peeros.client.Client`."""

    def __init__(self, client: Client) -> None:
        self._async = AsyncShare(client._async)
        self._run = client._run

    def list(self, kind: str = "local") -> ShareListing:
        return self._run(self._async.list(kind))

    def rescan(self) -> ShareRescan:
        return self._run(self._async.rescan())

    def lookup(self, query: str = "", mode: str = "exact", sha256: str | None = None) -> ShareHits:
        return self._run(self._async.lookup(query, mode, sha256))

    def stats(self) -> ShareStats:
        return self._run(self._async.stats())

    def search(
        self, query: str = "", mode: str = "exact", sha256: str | None = None, ttl: int = 7
    ) -> FloodHits:
        return self._run(self._async.search(query, mode, sha256, ttl))

    def flood_stats(self) -> FloodStats:
        return self._run(self._async.flood_stats())

    def download(
        self,
        name: str | None = None,
        sha256: str | None = None,
        save_as: str | None = None,
        progress: DownloadProgress | None = None,
    ) -> DownloadResult:
        return self._run(self._async.download(name, sha256, save_as, progress))
