"""A peer's shared folders: ``shared/`` (or ``--share DIR``), ``downloaded/``, ``replicated/``.

Holds one :class:`~peeros.share.scanner.Scanner` per folder, rescans them every
``rescan_interval`` seconds (and on request), and tells the tracker the full file list
whenever it changed (or the last report failed). Files are served by SHA-256, so a
downloader never depends on what a holder chose to call a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from peeros.db import PeerDB
from peeros.db_tables import ShareStatsDB
from peeros.errors import BadRequest, NotFound
from peeros.fsutil import read_json, write_json
from peeros.protocol import (
    ChunkList,
    SharedFile,
    ShareIndex,
    ShareListing,
    ShareRescan,
    ShareStats,
    ShareSummary,
)
from peeros.share.scanner import Entry, Scanner

log = logging.getLogger(__name__)

KINDS = ("local", "downloaded", "replicated")
#: Version of the hash cache file's format.
CACHE_VERSION = 1
#: Records listed by ``stats``.
STATS_RECORDS = 100


def summary(values: list[float]) -> ShareSummary:
    if not values:
        return ShareSummary(count=0, mean=0.0, stdev=0.0, min=0.0, max=0.0)
    return ShareSummary(
        count=len(values),
        mean=statistics.fmean(values),
        stdev=statistics.stdev(values) if len(values) > 1 else 0.0,
        min=min(values),
        max=max(values),
    )


class ShareService:
    def __init__(
        self,
        peer_id: str,
        share_dir: Path,
        chunk_size: int,
        rescan_interval: float,
        db: PeerDB,
        cache_path: Path | None = None,
    ) -> None:
        self.peer_id = peer_id
        self.rescan_interval = rescan_interval
        self.dirs = {
            "local": share_dir,
            "downloaded": share_dir.parent / "downloaded",
            "replicated": share_dir.parent / "replicated",
        }
        for d in self.dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        self.chunk_size = chunk_size
        self.scanners = {k: Scanner(d, chunk_size) for k, d in self.dirs.items()}
        self.cache_path = cache_path
        self._load_cache()
        self.stats_db = ShareStatsDB(db)
        self._lock = asyncio.Lock()
        #: sha256 -> (path, entry), rebuilt after each scan (local copies win)
        self._by_sha: dict[str, tuple[Path, Entry]] = {}
        #: set when the file list changed and the tracker has not heard of it yet
        self.changed = asyncio.Event()

    # --- scanning -------------------------------------------------------------------

    def _scan_all(self) -> ShareRescan:
        added: list[str] = []
        changed: list[str] = []
        removed: list[str] = []
        for kind, scanner in self.scanners.items():
            r = scanner.scan()
            prefix = "" if kind == "local" else f"{kind}/"
            added += [prefix + n for n in r.added]
            changed += [prefix + n for n in r.changed]
            removed += [prefix + n for n in r.removed]
        self._by_sha = {
            e.sha256: (self.dirs[kind] / e.name, e)
            for kind, scanner in reversed(self.scanners.items())
            for e in scanner.entries.values()
        }
        read = sum(s.files_read for s in self.scanners.values())
        return ShareRescan(
            added=added, changed=changed, removed=removed, files_read=read, peer_id=self.peer_id
        )

    def _load_cache(self) -> None:
        if self.cache_path is None or not self.cache_path.exists():
            return
        try:
            data = read_json(self.cache_path)
        except (OSError, ValueError) as exc:
            log.warning("ignoring the hash cache %s: %r", self.cache_path, exc)
            return
        if data.get("version") != CACHE_VERSION or data.get("chunk_size") != self.chunk_size:
            return
        for kind, scanner in self.scanners.items():
            scanner.load(data.get("folders", {}).get(kind, []))

    def _save_cache(self) -> None:
        if self.cache_path is None:
            return
        folders = {kind: s.dump() for kind, s in self.scanners.items()}
        data = {"version": CACHE_VERSION, "chunk_size": self.chunk_size, "folders": folders}
        write_json(self.cache_path, data, mode=0o600)

    async def rescan(self) -> ShareRescan:
        async with self._lock:
            result = await asyncio.to_thread(self._scan_all)
            if result.added or result.changed or result.removed:
                await asyncio.to_thread(self._save_cache)
        if result.added or result.changed or result.removed:
            log.info(
                "share rescan: %d added, %d changed, %d removed",
                len(result.added),
                len(result.changed),
                len(result.removed),
            )
            self.changed.set()
        return result

    def index(self) -> ShareIndex:
        return ShareIndex(
            files=[
                SharedFile(name=e.name, size=e.size, sha256=e.sha256, kind=kind)
                for kind, s in self.scanners.items()
                for e in s.entries.values()
            ]
        )

    def listing(self, kind: str) -> ShareListing:
        if kind not in self.scanners:
            raise BadRequest(f"kind must be one of {', '.join(KINDS)}, got {kind[:40]!r}")
        files = [
            SharedFile(name=e.name, size=e.size, sha256=e.sha256, kind=kind)
            for e in self.scanners[kind].entries.values()
        ]
        return ShareListing(
            kind=kind, directory=str(self.dirs[kind]), files=files, peer_id=self.peer_id
        )

    def find(self, sha256: str) -> tuple[Path, Entry]:
        """The path and entry of a file with this hash, in any of the folders."""
        found = self._by_sha.get(sha256)
        if found is None:
            raise NotFound(f"this peer shares no file with SHA-256 {sha256}")
        return found

    def chunk_list(self, sha256: str) -> ChunkList:
        _path, e = self.find(sha256)
        return ChunkList(sha256=e.sha256, size=e.size, chunk_size=e.chunk_size, chunks=e.chunks)

    async def run(self, report: Callable[[ShareIndex], Awaitable[None]] | None) -> None:
        """Rescan every ``rescan_interval``; send the list to the tracker when it changed
        (and again every 2 s while the tracker cannot be reached)."""
        await self.rescan()
        dirty = True
        next_scan = time.monotonic() + self.rescan_interval
        while True:
            if report is not None and dirty:
                try:
                    await report(self.index())
                    dirty = False
                except Exception as exc:  # the tracker may be away: try again soon
                    log.info("could not send the file list to the tracker: %r", exc)
            wait = max(0.0, next_scan - time.monotonic())
            if dirty and report is not None:
                wait = min(wait, 2.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), wait)
            if self.changed.is_set():
                self.changed.clear()
                dirty = True
            if time.monotonic() >= next_scan:
                try:
                    await self.rescan()
                except OSError as exc:  # the folder vanished or became unreadable: keep going
                    log.error("rescanning the shared folders failed: %r", exc)
                next_scan = time.monotonic() + self.rescan_interval

    # --- statistics -----------------------------------------------------------------

    def record_query(self, query: str, mode: str, seconds: float, results: int) -> None:
        self.stats_db.add_query(time.time(), query, mode, seconds, results)

    def record_download(
        self, name: str, sha256: str, size: int, seconds: float, sources: int, resumed: int
    ) -> None:
        self.stats_db.add_download(
            {
                "at": time.time(),
                "name": name,
                "sha256": sha256,
                "bytes": size,
                "seconds": seconds,
                "sources": sources,
                "resumed_bytes": resumed,
            }
        )

    def stats(self) -> ShareStats:
        queries = self.stats_db.queries(STATS_RECORDS)
        downloads = self.stats_db.downloads(STATS_RECORDS)
        speeds = [
            (d["bytes"] - d["resumed_bytes"]) / d["seconds"] / 1e6
            for d in downloads
            if d["seconds"] > 0
        ]
        total_bytes = sum(d["bytes"] - d["resumed_bytes"] for d in downloads)
        total_secs = sum(d["seconds"] for d in downloads)
        return ShareStats(
            search_seconds=summary([q["seconds"] for q in queries]),
            download_mbps=summary(speeds),
            throughput_mbps=total_bytes / total_secs / 1e6 if total_secs > 0 else 0.0,
            queries=queries,
            downloads=downloads,
            peer_id=self.peer_id,
        )
