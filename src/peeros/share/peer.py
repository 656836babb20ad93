"""The sharing side of a running peer: index reports, lookups and downloads.

Glue between :class:`~peeros.share.service.ShareService` (folders, hashes, records),
the tracker's index and :mod:`peeros.share.download`; the routes call one method here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from peeros.errors import BadRequest, NotFound, PeerOSError, Unavailable
from peeros.files.names import InvalidFileName, check_filename
from peeros.net.client import ClusterClient
from peeros.protocol import (
    ChunkList,
    DownloadRequest,
    DownloadResult,
    FloodSearch,
    ShareAssignments,
    ShareHit,
    ShareHits,
    ShareHolder,
    ShareIndex,
    ShareLookup,
)
from peeros.share.download import OnChunk, agree_on_chunks, download
from peeros.share.flood_service import FloodService
from peeros.share.service import ShareService

if TYPE_CHECKING:
    from peeros.peer.node import PeerNode

log = logging.getLogger(__name__)


def blob_path(sha256: str) -> str:
    return f"/v1/share/blobs/{sha256}"


class ClusterFetcher:
    """Chunk lists and byte ranges from holders' cluster-plane routes (mutual TLS)."""

    def __init__(self, client: ClusterClient) -> None:
        self.client = client

    async def chunk_list(self, address: str, sha256: str) -> ChunkList:
        got: ChunkList = await self.client.request(
            address, "GET", blob_path(sha256) + "/chunks", response=ChunkList
        )
        return got

    async def fetch(self, address: str, sha256: str, start: int, count: int) -> bytes:
        headers = {"Range": f"bytes={start}-{start + count - 1}"}
        async with self.client.stream(
            address, "GET", blob_path(sha256), idle_timeout=30.0, headers=headers
        ) as resp:
            return await resp.read()


class SharePeer:
    def __init__(self, node: PeerNode) -> None:
        self.node = node
        s = node.settings
        share_dir = Path(s.share_dir) if s.share_dir else node.data_dir / "shared"
        self.service = ShareService(
            node.peer_id,
            share_dir,
            s.share_chunk_bytes,
            s.rescan_interval,
            node.db,
            node.data_dir / "share-cache.json",
        )
        self._busy: dict[str, asyncio.Lock] = {}
        self.flood = FloodService(self, s.neighbors, s.heartbeat_interval)

    def _client(self) -> ClusterClient:
        if self.node.client is None:
            raise Unavailable("the peer is still starting")
        return self.node.client

    def _tracker(self) -> str:
        if not self.node.settings.tracker:
            raise Unavailable("lookup and download by index need a tracker; this peer has none")
        return self.node.settings.tracker

    async def report(self, index: ShareIndex) -> None:
        await self._client().request(self._tracker(), "POST", "/v1/share/index", index)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.flood.run())
            if not self.node.settings.tracker:
                tg.create_task(self.service.run(None))
                return
            tg.create_task(self.service.run(self.report))
            tg.create_task(self._replicate_loop())

    async def _replicate_loop(self) -> None:
        """Ask the coordinator for copies to make, every heartbeat interval; make them."""
        while True:
            await asyncio.sleep(self.node.settings.heartbeat_interval)
            try:
                got: ShareAssignments = await self._client().request(
                    self._tracker(), "POST", "/v1/share/assignments", None, ShareAssignments
                )
            except PeerOSError as exc:
                log.info("could not ask the tracker for replication work: %s", exc)
                continue
            for a in got.assignments:
                hit = ShareHit(name=a.name, size=a.size, sha256=a.sha256, holders=a.holders)
                name = a.name
                if (self.service.dirs["replicated"] / name).exists():  # another file, same name
                    name = f"{a.sha256[:12]}-{name}"[:255]
                try:
                    await self._fetch(hit, "replicated", name, None)
                except PeerOSError as exc:
                    log.warning("replicating %r failed: %s", a.name, exc)
                except OSError as exc:  # our disk: full, read-only... try again next round
                    log.error("replicating %r failed here: %r", a.name, exc)

    async def lookup(self, req: ShareLookup, record: bool = True) -> ShareHits:
        if req.sha256 is None and not req.query.strip():
            raise BadRequest("the query is empty; give a name, a pattern or --hash")
        started = time.perf_counter()
        got: ShareHits = await self._client().request(
            self._tracker(), "POST", "/v1/share/lookup", req, ShareHits
        )
        seconds = time.perf_counter() - started
        if record:
            query = req.sha256 or req.query
            mode = "sha256" if req.sha256 else req.mode
            await asyncio.to_thread(self.service.record_query, query, mode, seconds, len(got.hits))
        return ShareHits(hits=got.hits, seconds=seconds)

    async def _flood_find(self, req: DownloadRequest) -> list[ShareHit]:
        """Without a tracker: flood a search for the name or hash, group hits by content."""
        search = FloodSearch(query=req.name or "", sha256=req.sha256)
        grouped: dict[tuple[str, str, int], list[ShareHolder]] = {}
        for h in (await self.flood.search(search)).hits:
            grouped.setdefault((h.name, h.sha256, h.size), []).append(h.holder)
        return [
            ShareHit(name=name, size=size, sha256=sha, holders=holders)
            for (name, sha, size), holders in grouped.items()
        ]

    async def _find(self, req: DownloadRequest) -> ShareHit:
        if req.name is None and req.sha256 is None:
            raise BadRequest("download needs a file name or a hash")
        if not self.node.settings.tracker:
            hits = await self._flood_find(req)
            what = f"SHA-256 {req.sha256}" if req.sha256 else f"name {req.name!r}"
        elif req.sha256 is not None:
            hits = (await self.lookup(ShareLookup(sha256=req.sha256), record=False)).hits
            what = f"SHA-256 {req.sha256}"
        elif req.name is not None:
            hits = (await self.lookup(ShareLookup(query=req.name), record=False)).hits
            what = f"name {req.name!r}"
        else:
            raise BadRequest("download needs a file name or a hash")
        if not hits:
            raise NotFound(f"no live peer shares a file with {what}")
        # Several versions under one name: the one with the most holders wins.
        best = max(hits, key=lambda h: len(h.holders))
        return best

    async def download(self, req: DownloadRequest, on_chunk: OnChunk | None) -> DownloadResult:
        hit = await self._find(req)
        name = req.save_as or hit.name
        try:
            check_filename(name)
        except InvalidFileName as exc:
            raise BadRequest(str(exc)) from exc
        return await self._fetch(hit, "downloaded", name, on_chunk)

    async def _fetch(
        self, hit: ShareHit, kind: str, name: str, on_chunk: OnChunk | None
    ) -> DownloadResult:
        holders = [h for h in hit.holders if h.peer_id != self.node.peer_id]
        if not holders:
            raise BadRequest(f"{hit.name!r} is only shared by this peer already")
        dest = self.service.dirs[kind] / name
        lock = self._busy.setdefault(hit.sha256, asyncio.Lock())
        started = time.perf_counter()
        async with lock:
            cl, agreed = await agree_on_chunks(self.fetcher(), holders, hit.sha256, hit.size)
            outcome = await download(self.fetcher(), agreed, cl, dest, on_chunk)
        seconds = time.perf_counter() - started
        log.info("downloaded %r (%d bytes) from %d holders", name, cl.size, len(agreed))
        await asyncio.to_thread(
            self.service.record_download,
            name,
            hit.sha256,
            cl.size,
            seconds,
            len(agreed),
            outcome.resumed_bytes,
        )
        await self.service.rescan()
        return DownloadResult(
            name=name,
            path=str(dest),
            size=cl.size,
            sha256=hit.sha256,
            seconds=seconds,
            bytes_fetched=outcome.bytes_fetched,
            resumed_bytes=outcome.resumed_bytes,
            sources=[h.peer_id for h in agreed],
            chunks_refetched=outcome.chunks_refetched,
        )

    def fetcher(self) -> ClusterFetcher:
        return ClusterFetcher(self._client())
