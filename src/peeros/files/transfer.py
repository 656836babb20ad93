"""Moving file bytes in constant memory, on peers and clients alike.

Disk work runs in threads (``hashlib`` and file writes release the GIL), one chunk
ahead of the network, so reading from a socket, hashing and writing overlap while at
most a few 1 MiB chunks are in flight whatever the file size.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from peeros.errors import BadRequest, PeerOSError

__all__ = [
    "CHUNK",
    "Progress",
    "Sink",
    "coalesce",
    "hash_file",
    "read_chunks",
    "read_file",
    "write_stream",
]

#: Unit of reads, writes and thread hand-offs.
CHUNK = 1 << 20

#: ``progress(stage, done, total)``: stage is "hashing", "sending" or "receiving";
#: ``total`` is -1 when unknown. Called on the event loop's thread.
Progress = Callable[[str, int, int], None]


class Sink(Protocol):
    """Where :func:`write_stream` puts bytes (an ``AtomicWriter``, say); called in a thread."""

    def write(self, data: bytes) -> None: ...


async def coalesce(chunks: AsyncIterable[bytes], size: int = CHUNK) -> AsyncIterator[bytes]:
    """Regroup a stream of small pieces into chunks of about ``size`` bytes."""
    parts: list[bytes] = []
    held = 0
    async for piece in chunks:
        parts.append(piece)
        held += len(piece)
        if held >= size:
            yield b"".join(parts)
            parts.clear()
            held = 0
    if held:
        yield b"".join(parts)


async def _settle(pending: asyncio.Future[Any] | None) -> None:
    """Wait for a thread still using a writer or file before it is closed under it."""
    if pending is not None:
        with contextlib.suppress(BaseException):
            await pending


async def write_stream(
    writer: Sink,
    chunks: AsyncIterable[bytes],
    on_chunk: Callable[[int], None] | None = None,
) -> int:
    """Write every chunk into ``writer``; return the byte count (``commit`` is the caller's).

    Chunk N is written (and hashed) in a thread while chunk N+1 arrives. On any error,
    including cancellation, the thread is waited for before the error propagates, so an
    ``abort`` that follows never races with a write.
    """
    loop = asyncio.get_running_loop()
    pending: asyncio.Future[None] | None = None
    total = 0
    try:
        async for chunk in coalesce(chunks):
            if pending is not None:
                await asyncio.shield(pending)
            pending = loop.run_in_executor(None, writer.write, chunk)
            total += len(chunk)
            if on_chunk is not None:
                on_chunk(len(chunk))
        if pending is not None:
            await asyncio.shield(pending)
    except BaseException:
        await _settle(pending)
        raise
    return total


async def read_chunks(
    fobj: BinaryIO, start: int = 0, count: int | None = None
) -> AsyncGenerator[bytes, None]:
    """``count`` bytes (default: all) of an open file from ``start``, in chunks, reading
    one chunk ahead in a thread. The caller closes the file, after closing this."""
    loop = asyncio.get_running_loop()
    left = count

    def next_read() -> asyncio.Future[bytes] | None:
        if left is not None and left <= 0:
            return None
        return loop.run_in_executor(None, fobj.read, CHUNK if left is None else min(CHUNK, left))

    await asyncio.to_thread(fobj.seek, start)
    pending = next_read()
    try:
        while pending is not None:
            chunk = await asyncio.shield(pending)
            if not chunk:
                pending = None
                break
            if left is not None:
                left -= len(chunk)
            pending = next_read()
            yield chunk
    finally:
        await _settle(pending)


async def read_file(path: Path, start: int = 0) -> AsyncGenerator[bytes, None]:
    """The bytes of ``path`` from ``start``, as :func:`read_chunks` reads them."""
    fobj = await asyncio.to_thread(open, path, "rb")
    try:
        async with contextlib.aclosing(read_chunks(fobj, start)) as chunks:
            async for chunk in chunks:
                yield chunk
    finally:
        fobj.close()


async def send_file(
    path: Path, size: int, progress: Progress | None, failures: list[PeerOSError]
) -> AsyncGenerator[bytes, None]:
    """The first ``size`` bytes of ``path`` as an upload body, reporting progress. If the
    file shrank meanwhile, the error is appended to ``failures`` (the HTTP client wraps
    what a body raises) and raised, which cuts the upload short: the peer keeps nothing."""
    sent = 0
    fobj = await asyncio.to_thread(open, path, "rb")
    try:
        async with contextlib.aclosing(read_chunks(fobj, 0, size)) as chunks:
            async for chunk in chunks:
                sent += len(chunk)
                if progress is not None:
                    progress("sending", sent, size)
                yield chunk
    finally:
        fobj.close()
    if sent != size:
        failures.append(BadRequest(f"{path} shrank while it was being sent"))
        raise failures[-1]


async def hash_file(path: Path, progress: Progress | None = None) -> tuple[str, int]:
    """SHA-256 (hex) and size of ``path``, read once in constant memory."""
    total = (await asyncio.to_thread(path.stat)).st_size
    h = hashlib.sha256()
    done = 0
    async with contextlib.aclosing(read_file(path)) as chunks:
        async for chunk in chunks:
            await asyncio.to_thread(h.update, chunk)
            done += len(chunk)
            if progress is not None:
                progress("hashing", done, total)
    return h.hexdigest(), done
