"""``Client.files.get`` on the caller's own thread: a download without an event loop.

The synchronous :class:`~peeros.client.Client` fetches files through a kept-alive
connection of :class:`~peeros.client_http.BlockingHTTP` instead of
handing each download to its event-loop thread: for a small file the two thread hops and
aiohttp's per-request work cost more than the request itself on loopback, and for a big
one the caller's thread blocks in ``recv`` (the GIL released) while the writer and
hashing threads of :class:`~peeros.files.saving.SaveFile` work, so no event loop competes
with them for the GIL. The guarantees are those of the asynchronous path: the file
appears at the save path only once complete and matching the peer's SHA-256 (temp file +
rename), memory stays at a few chunks whatever the size.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import socket
import ssl
import struct
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path

from pydantic import ValidationError

from peeros.client_body import Reply
from peeros.client_http import BlockingHTTP
from peeros.errors import PeerOSError, Unavailable, from_wire
from peeros.files.saving import DEPTH, PendingSave, SaveFile
from peeros.files.spares import SPARES
from peeros.files.transfer import CHUNK, Progress
from peeros.protocol import (
    MAX_FILE_BATCH,
    MODIFIED_HEADER,
    PEER_HEADER,
    SHA256_HEADER,
    FileBatchError,
    FileBatchRequest,
    FileInfo,
)

__all__ = ["fetch", "fetch_batch"]

#: Longest head line of a file in a batch (a name is at most 255 bytes).
_MAX_HEAD = 64 << 10
#: Bodies up to this size are read whole and saved without thread hand-offs.
SMALL_BODY = 64 << 10


def fetch(
    api: BlockingHTTP,
    path: str,
    name: str,
    dest: Path,
    idle_timeout: float,
    progress: Progress | None = None,
) -> FileInfo:
    """GET ``path`` (a ``/v1/files/NAME`` route) into ``dest``, verified; what was saved.

    ``idle_timeout`` bounds each wait for bytes.
    """
    saved, info = _download(api, path, name, dest, idle_timeout, progress)
    try:
        saved.publish()
    finally:
        saved.discard()  # a no-op once published
    return info


def fetch_batch(
    api: BlockingHTTP, route: str, items: Sequence[tuple[str, Path]], idle_timeout: float
) -> list[FileInfo]:
    """Every ``(name, dest)`` fetched through ``route`` (``/v1/files-batch``, with its
    ``?on=``) in requests of up to ``MAX_FILE_BATCH`` names, each file verified into a
    temp file beside its destination; all are renamed into place only once every one has
    arrived: if any fails, none is saved (every temp file is removed) and the error is
    raised.

    One request carries many files back-to-back (see ``peer/files_batch.py``), so the
    per-request work of the client, the peer and any relay is paid once per batch
    instead of once per file, and the peer sends while the client saves.
    """
    saved: list[SaveFile] = []
    infos: list[FileInfo] = []
    name = ""
    try:
        for start in range(0, len(items), MAX_FILE_BATCH):
            part = items[start : start + MAX_FILE_BATCH]
            body = FileBatchRequest(names=[n for n, _ in part]).model_dump()
            with api.stream("POST", route, body, idle_timeout, idempotent=True) as reply:
                try:
                    for name, dest in part:
                        info = _head(reply, name)
                        writer = SaveFile(dest, SPARES.take(dest.parent))
                        saved.append(writer)
                        _receive_framed(reply, writer, info)
                        writer.name()
                        infos.append(info)
                    if reply.read(1):  # the end of the body: the connection may be reused
                        raise PeerOSError("the peer sent more files than were asked for")
                except OSError as exc:
                    raise Unavailable(
                        f"batch download failed at {name!r}: {exc!r}; nothing was saved"
                    ) from exc
        for writer in saved:
            writer.publish()
    finally:
        for writer in saved:
            writer.discard()  # a no-op once published
    return infos


def _head(reply: Reply, name: str) -> FileInfo:
    """The JSON line that comes before each file of a batch; its error, raised."""
    line = reply.readline(_MAX_HEAD)
    if not line.endswith(b"\n"):
        raise ConnectionError("the batch ended in the middle of a file's head line")
    try:
        head = json.loads(line)
        if isinstance(head, dict) and "error" in head:
            failed = FileBatchError.model_validate(head)
            raise from_wire(500, failed.error.code, failed.error.message)
        info = FileInfo.model_validate(head)
    except (ValueError, ValidationError) as exc:
        raise PeerOSError(f"the peer sent a malformed batch ({exc})") from exc
    if info.name != name:
        raise PeerOSError(f"the peer sent {info.name!r} where {name!r} was expected")
    return info


def _receive_framed(reply: Reply, writer: SaveFile, info: FileInfo) -> None:
    """The ``info.size`` bytes that follow a head line, written, hashed and verified."""
    if info.size <= SMALL_BODY:
        data = reply.read(info.size) if info.size else b""
        if len(data) != info.size:
            raise ConnectionError(f"the batch ended {info.size - len(data)} bytes short")
        writer.write(data)
    else:
        writer.expect(info.size)
        writer.write_blocking(_pieces(reply, info.size))
    writer.verify(info.sha256)


def _pieces(reply: Reply, size: int) -> Iterator[bytes]:
    left = size
    while left:
        piece = reply.read(min(CHUNK, left))
        if not piece:
            raise ConnectionError(f"the body ended {left} bytes short")
        left -= len(piece)
        yield piece


def _download(
    api: BlockingHTTP,
    path: str,
    name: str,
    dest: Path,
    idle_timeout: float,
    progress: Progress | None = None,
) -> tuple[SaveFile, FileInfo]:
    """GET ``path`` into a temp file beside ``dest``, verified but not yet renamed: the
    caller publishes or discards it. On any failure the temp file is removed.

    Creating a file is the slowest step of saving a small one: the file is an unnamed one
    made ahead in ``dest``'s directory (:mod:`peeros.files.spares`), or else a named temp
    file created in a thread while the request is out.
    """
    pending = PendingSave(dest, SPARES.take(dest.parent))
    try:
        with api.stream("GET", path, timeout=idle_timeout) as reply:
            expected = reply.getheader(SHA256_HEADER)
            if not expected:
                raise PeerOSError(f"the peer's local API sent {name!r} without its SHA-256")
            writer = pending.writer_blocking()
            try:
                size, digest = _receive(reply, writer, expected, idle_timeout, progress)
            except OSError as exc:
                raise Unavailable(f"download of {name!r} was cut off: {exc!r}") from exc
            info = FileInfo(
                name=name,
                size=size,
                sha256=digest,
                modified=float(reply.getheader(MODIFIED_HEADER) or 0),
                peer_id=reply.getheader(PEER_HEADER) or "",
            )
    except BaseException:
        pending.discard_blocking()
        raise
    return writer, info


def _receive(
    reply: Reply,
    writer: SaveFile,
    expected: str,
    idle_timeout: float,
    progress: Progress | None,
) -> tuple[int, str]:
    total = reply.length  # None: chunked, or up to the end of the connection
    if total is not None and total <= SMALL_BODY:
        # Read whole, then hashed and written right here.
        data = reply.read(total) if total else b""
        if len(data) != total:
            raise ConnectionError(f"the body ended {total - len(data)} bytes short")
        writer.write(data)
    else:
        writer.expect(total or 0)

        def on_chunk(n: int) -> None:
            if progress is not None:
                progress("receiving", writer.size, -1 if total is None else total)

        if total is None:
            writer.write_blocking(iter(lambda: reply.read(CHUNK), b""), on_chunk)
        else:
            # Closed here on every way out, so that the socket's settings are restored
            # before the connection is kept or closed.
            with contextlib.closing(_body(reply, total, idle_timeout)) as pieces:
                writer.write_blocking(pieces, on_chunk, aligned=True)
    digest = writer.verify(expected)
    if progress is not None and total is not None and total <= SMALL_BODY:
        progress("receiving", total, total)
    return writer.size, digest


def _body(reply: Reply, total: int, idle_timeout: float) -> Generator[memoryview, None, None]:
    """The ``total`` bytes of a body in 1 MiB pieces, straight from the socket once what
    the connection buffered with the head is taken.

    On a plain socket each piece is one blocking ``recv(MSG_WAITALL)``, so this thread
    gives up and retakes the GIL once per MiB instead of once per socket read (tens of
    them per MiB), each of which could wait for the writer or hashing thread; the idle
    timeout becomes the socket's ``SO_RCVTIMEO`` meanwhile. Pieces live in a ring of
    ``DEPTH + 1`` page-aligned buffers (so that the file may be written with
    ``O_DIRECT``): at most ``DEPTH`` are still queued for writing and hashing (see
    ``SaveFile.write_blocking``) while the next one fills.
    """
    ring = [memoryview(mmap.mmap(-1, CHUNK)) for _ in range(DEPTH + 1)]  # page-aligned
    sock = reply.sock
    waitall = not isinstance(sock, ssl.SSLSocket)  # (TLS takes no recv flags)
    seconds = max(1, int(idle_timeout))
    if waitall:
        sock.settimeout(None)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", seconds, 0))
    left, slot = total, 0
    try:
        while left:
            view = ring[slot][: min(CHUNK, left)]
            slot = (slot + 1) % len(ring)
            try:
                reply.read_into(view, waitall)
            except BlockingIOError as exc:  # SO_RCVTIMEO: nothing for idle_timeout
                raise TimeoutError(f"no data for {seconds} s") from exc
            left -= len(view)
            yield view
    finally:
        if waitall:
            with contextlib.suppress(OSError):  # already closed: nothing to restore
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 0))
                sock.settimeout(idle_timeout)
