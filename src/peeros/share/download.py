"""Verified, multi-source, resumable downloads of shared files.

The file is cut into the holders' chunks (``ChunkList``). Every holder gets a few
workers that take the next chunk nobody has yet, fetch it with an HTTP ``Range``
request and check it against the chunk's SHA-256 before writing it in place; a chunk
that fails is put back for another holder (BitTorrent's piece verification). The
whole file is then checked against its SHA-256 before it is renamed into place.

Progress is kept beside the target: ``.NAME.peeros-partial`` (the bytes, at their
final offsets) and ``.NAME.peeros-partial.json`` (the chunks done). A download that
was interrupted, even by kill -9, starts again from there instead of from zero.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from peeros.errors import PeerOSError, Unavailable
from peeros.fsutil import write_json
from peeros.protocol import ChunkList, ShareHolder

log = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".peeros-partial"
#: Version of the progress file's format.
PROGRESS_VERSION = 1
#: Concurrent chunk requests per holder.
PER_HOLDER = 2

#: ``await on_chunk(done_bytes, total_bytes)`` after every verified chunk.
OnChunk = Callable[[int, int], Awaitable[None]]


class Fetcher(Protocol):
    async def chunk_list(self, address: str, sha256: str) -> ChunkList: ...

    async def fetch(self, address: str, sha256: str, start: int, count: int) -> bytes: ...


@dataclass
class Outcome:
    path: Path
    bytes_fetched: int = 0
    resumed_bytes: int = 0
    chunks_refetched: int = 0
    sources: list[str] = field(default_factory=list)


def partial_paths(dest: Path) -> tuple[Path, Path]:
    partial = dest.with_name(f".{dest.name}{PARTIAL_SUFFIX}")
    return partial, partial.with_name(partial.name + ".json")


async def agree_on_chunks(
    fetcher: Fetcher, holders: list[ShareHolder], sha256: str, size: int
) -> tuple[ChunkList, list[ShareHolder]]:
    """Ask every holder for its chunk list; keep those that match the file and each other.

    A holder that reports another size or a malformed list (one that lies about the
    file) is dropped with a log line; with none left the download fails clearly."""
    answers = await asyncio.gather(
        *(fetcher.chunk_list(h.address, sha256) for h in holders), return_exceptions=True
    )
    good: list[tuple[ShareHolder, ChunkList]] = []
    problems: list[str] = []
    for h, got in zip(holders, answers, strict=True):
        if isinstance(got, BaseException):
            problems.append(f"{h.peer_id}: {getattr(got, 'message', None) or got!r}")
            continue
        expected_chunks = -(-got.size // got.chunk_size)
        if got.sha256 != sha256 or got.size != size or len(got.chunks) != expected_chunks:
            problems.append(
                f"{h.peer_id} reports {got.size} bytes in {len(got.chunks)} chunks "
                f"for a file of {size} bytes"
            )
            continue
        good.append((h, got))
    if not good:
        raise Unavailable(
            f"no holder can serve {sha256[:16]}... ({size} bytes): " + "; ".join(problems)
        )
    votes = collections.Counter((cl.chunk_size, tuple(cl.chunks)) for _h, cl in good)
    (chunk_size, chunks), _n = votes.most_common(1)[0]
    agreed = [h for h, cl in good if (cl.chunk_size, tuple(cl.chunks)) == (chunk_size, chunks)]
    for p in problems:
        log.warning("download of %s: %s", sha256[:16], p)
    return ChunkList(sha256=sha256, size=size, chunk_size=chunk_size, chunks=list(chunks)), agreed


def _load_progress(progress: Path, partial: Path, cl: ChunkList) -> set[int]:
    try:
        data: Any = json.loads(progress.read_text())
        same = (
            data.get("version") == PROGRESS_VERSION
            and data.get("sha256") == cl.sha256
            and data.get("size") == cl.size
            and data.get("chunk_size") == cl.chunk_size
            and partial.stat().st_size == cl.size
        )
        if same:
            return {int(i) for i in data["done"] if 0 <= int(i) < len(cl.chunks)}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        pass
    return set()


def _hash_path(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while data := f.read(1 << 20):
            h.update(data)
    return h.hexdigest()


def _already_there(dest: Path, sha256: str) -> bool:
    return dest.exists() and _hash_path(dest) == sha256


class _Run:
    """The shared state of one download's workers."""

    def __init__(self, cl: ChunkList, done: set[int], holders: list[ShareHolder]) -> None:
        self.cl = cl
        self.done = done
        self.pending = [i for i in range(len(cl.chunks)) if i not in done]
        self.excluded: dict[int, set[str]] = collections.defaultdict(set)
        self.dead: set[str] = set()
        self.holders = holders
        self.inflight = 0
        self.error: str | None = None
        self.cond = asyncio.Condition()

    def candidate(self, peer_id: str) -> int | None:
        for i in self.pending:
            if peer_id not in self.excluded[i]:
                return i
        return None

    @property
    def finished(self) -> bool:
        return self.error is not None or (not self.pending and self.inflight == 0)

    def check_stuck(self) -> None:
        """Fail when chunks are left that no live holder may still serve."""
        if self.inflight or not self.pending:
            return
        live = [h.peer_id for h in self.holders if h.peer_id not in self.dead]
        if not any(self.candidate(p) is not None for p in live):
            i = self.pending[0]
            self.error = (
                f"chunk {i} of {self.cl.sha256[:16]}... could not be fetched intact from any "
                f"holder (failed verification: {sorted(self.excluded[i]) or 'none'}; "
                f"unreachable: {sorted(self.dead) or 'none'})"
            )


async def download(
    fetcher: Fetcher,
    holders: list[ShareHolder],
    cl: ChunkList,
    dest: Path,
    on_chunk: OnChunk | None = None,
) -> Outcome:
    """Fetch the file ``cl`` describes into ``dest`` from ``holders`` (see the module doc)."""
    partial, progress = partial_paths(dest)
    if await asyncio.to_thread(_already_there, dest, cl.sha256):
        return Outcome(dest, resumed_bytes=cl.size)  # already here (a finished earlier run)
    done = await asyncio.to_thread(_load_progress, progress, partial, cl)
    if not done:
        with partial.open("wb") as f:
            f.truncate(cl.size)
    out = Outcome(dest, sources=[h.peer_id for h in holders])
    out.resumed_bytes = sum(min(cl.chunk_size, cl.size - i * cl.chunk_size) for i in done)
    if done:
        log.info("resuming %s: %d of %d chunks done", dest.name, len(done), len(cl.chunks))
    run = _Run(cl, done, holders)
    save_lock = asyncio.Lock()
    fd = os.open(partial, os.O_RDWR)

    async def save() -> None:
        async with save_lock:
            state = {
                "version": PROGRESS_VERSION,
                "sha256": cl.sha256,
                "size": cl.size,
                "chunk_size": cl.chunk_size,
                "done": sorted(run.done),
            }
            await asyncio.to_thread(write_json, progress, state)

    async def worker(h: ShareHolder) -> None:
        while True:
            async with run.cond:
                await run.cond.wait_for(
                    lambda: (
                        run.finished
                        or h.peer_id in run.dead
                        or run.candidate(h.peer_id) is not None
                    )
                )
                if run.finished or h.peer_id in run.dead:
                    return
                i = run.candidate(h.peer_id)
                assert i is not None
                run.pending.remove(i)
                run.inflight += 1
            start = i * cl.chunk_size
            count = min(cl.chunk_size, cl.size - start)
            try:
                data = await fetcher.fetch(h.address, cl.sha256, start, count)
            except (PeerOSError, OSError, TimeoutError) as exc:
                log.warning("holder %s failed on chunk %d: %r", h.peer_id, i, exc)
                async with run.cond:
                    run.dead.add(h.peer_id)
                    run.pending.insert(0, i)
                    run.inflight -= 1
                    run.check_stuck()
                    run.cond.notify_all()
                return
            out.bytes_fetched += len(data)
            if len(data) != count or hashlib.sha256(data).hexdigest() != cl.chunks[i]:
                log.warning("chunk %d from %s failed verification", i, h.peer_id)
                async with run.cond:
                    out.chunks_refetched += 1
                    run.excluded[i].add(h.peer_id)
                    run.pending.insert(0, i)
                    run.inflight -= 1
                    run.check_stuck()
                    run.cond.notify_all()
                continue
            await asyncio.to_thread(os.pwrite, fd, data, start)
            async with run.cond:
                run.done.add(i)
                run.inflight -= 1
                run.check_stuck()
                run.cond.notify_all()
            await save()
            if on_chunk is not None:
                await on_chunk(
                    sum(min(cl.chunk_size, cl.size - j * cl.chunk_size) for j in run.done), cl.size
                )

    try:
        async with asyncio.TaskGroup() as tg:
            for h in holders:
                for _ in range(PER_HOLDER):
                    tg.create_task(worker(h))
    except BaseExceptionGroup as group:  # e.g. on_chunk's reader went away: say so plainly
        raise group.exceptions[0] from None
    finally:
        os.close(fd)
    if run.error is None and run.pending:
        run.error = f"no holder of {cl.sha256[:16]}... could be reached"
    if run.error is not None:
        raise Unavailable(run.error + "; the chunks fetched so far are kept for a resume")
    got = await asyncio.to_thread(_hash_path, partial)
    if got != cl.sha256:
        partial.unlink(missing_ok=True)
        progress.unlink(missing_ok=True)
        raise Unavailable(
            f"the assembled file hashes to {got[:16]}..., not {cl.sha256[:16]}...; discarded"
        )
    os.replace(partial, dest)
    progress.unlink(missing_ok=True)
    return out
