"""``Client.files.get`` on the caller's own thread: a download without an event loop.

The synchronous :class:`~peeros.client.Client` fetches files through a kept-alive
``http.client`` connection of :class:`~peeros.client_http.BlockingHTTP` instead of
handing each download to its event-loop thread: for a small file the two thread hops and
aiohttp's per-request work cost more than the request itself on loopback, and for a big
one the caller's thread blocks in ``recv`` (the GIL released) while the writer and
hashing threads of :class:`~peeros.files.saving.SaveFile` work, so no event loop competes
with them for the GIL. The guarantees are those of the asynchronous path: the file
appears at the save path only once complete and matching the peer's SHA-256 (temp file +
rename), memory stays at a few chunks whatever the size.
"""

from __future__ import annotations

import http.client
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

from peeros.client_http import BlockingHTTP
from peeros.errors import PeerOSError, Unavailable
from peeros.files.saving import DEPTH, PendingSave, SaveFile
from peeros.files.transfer import CHUNK, Progress
from peeros.protocol import MODIFIED_HEADER, PEER_HEADER, SHA256_HEADER, FileInfo

__all__ = ["fetch"]

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

    ``idle_timeout`` bounds each wait for bytes. The temp file is created in a thread
    while the request is out: creating a file is the slowest step of saving a small one.
    """
    pending = PendingSave(dest)
    try:
        with api.stream("GET", path, timeout=idle_timeout) as (resp, sock):
            expected = resp.getheader(SHA256_HEADER)
            if not expected:
                raise PeerOSError(f"the peer's local API sent {name!r} without its SHA-256")
            try:
                writer = pending.writer_blocking()
                size, digest = _receive(resp, sock, writer, expected, idle_timeout, progress)
            except (http.client.HTTPException, OSError) as exc:
                raise Unavailable(f"download of {name!r} was cut off: {exc!r}") from exc
            return FileInfo(
                name=name,
                size=size,
                sha256=digest,
                modified=float(resp.getheader(MODIFIED_HEADER, "0") or 0),
                peer_id=resp.getheader(PEER_HEADER, ""),
            )
    finally:
        pending.discard_blocking()


def _receive(
    resp: http.client.HTTPResponse,
    sock: socket.socket,
    writer: SaveFile,
    expected: str,
    idle_timeout: float,
    progress: Progress | None,
) -> tuple[int, str]:
    total = resp.length  # None: no Content-Length (read to the end of the connection)
    with writer:
        if total is not None and total <= SMALL_BODY:
            # Read whole (IncompleteRead if cut short), then hashed, written and renamed here.
            data = resp.read()
            writer.write(data)
        else:
            writer.expect(total or 0)

            def on_chunk(n: int) -> None:
                if progress is not None:
                    progress("receiving", writer.size, -1 if total is None else total)

            if total is None:
                writer.write_blocking(iter(lambda: resp.read(CHUNK), b""), on_chunk)
            else:
                writer.write_blocking(_body(resp, sock, total, idle_timeout), on_chunk)
                if writer.size != total:
                    raise http.client.IncompleteRead(b"", total - writer.size)
                resp.close()  # read to its end: the connection may be reused
        digest = writer.commit(expected)
    if progress is not None and total is not None and total <= SMALL_BODY:
        progress("receiving", total, total)
    return writer.size, digest


def _body(
    resp: http.client.HTTPResponse, sock: socket.socket, total: int, idle_timeout: float
) -> Iterator[memoryview]:
    """The ``total`` bytes of a body in 1 MiB pieces, read from the socket itself once
    the bytes ``http.client`` buffered with the head are taken.

    Each piece is one blocking ``recv(MSG_WAITALL)``, so this thread gives up and retakes
    the GIL once per MiB instead of once per socket read (tens of them per MiB), each of
    which could wait for the writer or hashing thread. The idle timeout becomes the
    socket's ``SO_RCVTIMEO``. Pieces live in a ring of ``DEPTH + 1`` buffers: at most
    ``DEPTH`` are still queued for writing and hashing (see ``SaveFile.write_blocking``)
    while the next one fills.
    """
    assert resp.fp is not None
    ring = [memoryview(bytearray(CHUNK)) for _ in range(DEPTH + 1)]
    left = total
    head = resp.fp.peek(1)[:left]  # what came with the head (one socket read if none did)
    pending = len(head)
    slot = 0
    sock.settimeout(None)
    seconds = max(1, int(idle_timeout))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", seconds, 0))
    try:
        while left:
            view = ring[slot][: min(CHUNK, left)]
            slot = (slot + 1) % len(ring)
            got = 0
            if pending:
                got = resp.fp.readinto(view[:pending])
                pending = 0
            while got < len(view):
                try:
                    n = sock.recv_into(view[got:], len(view) - got, socket.MSG_WAITALL)
                except BlockingIOError as exc:  # SO_RCVTIMEO: nothing for idle_timeout
                    raise TimeoutError(f"no data for {seconds} s") from exc
                if not n:
                    raise http.client.IncompleteRead(b"", left - got)
                got += n
            left -= got
            yield view
    finally:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 0))
        sock.settimeout(idle_timeout)
