"""Saving a download on the client: a temp file beside the destination, hashed while
written, renamed over it only when complete and matching the announced SHA-256.

Big bodies are written and hashed by two threads at once, several chunks deep; small
ones are written on the event loop. The temp file is created in a thread while the
request is out (:class:`PendingSave`): creating a file is the slowest step of saving a
small one.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import errno
import fcntl
import hashlib
import os
import tempfile
from collections.abc import AsyncIterable, Callable, Iterable
from pathlib import Path
from types import TracebackType

from peeros.errors import PeerOSError
from peeros.files.spares import link_into, link_temp
from peeros.files.transfer import coalesce
from peeros.fsutil import reserve

__all__ = ["DEPTH", "DIRECT_MIN", "PendingSave", "SaveFile"]

#: Chunks (1 MiB) of a big download queued for writing and hashing at most.
DEPTH = 4
#: Downloads at least this big are written with O_DIRECT when their chunks allow it.
DIRECT_MIN = 64 << 20
_ALIGN = 4096
_O_DIRECT = getattr(os, "O_DIRECT", 0)
#: Where temp files of downloads are created (file creation releases the GIL).
_SAVE_THREADS = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="peeros-save")
#: One FIFO thread each, so that chunks are written and hashed in order.
_WRITE_THREAD = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="peeros-write")
_HASH_THREAD = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="peeros-hash")


_Pair = tuple["concurrent.futures.Future[None]", "concurrent.futures.Future[None]"]


def _wait_pair(pair: _Pair) -> None:
    pair[0].result()
    pair[1].result()


class PendingSave:
    """A :class:`SaveFile` being created in a thread while the request goes out: creating
    the temp file (a new inode) is the slowest step of saving a small file, so it
    overlaps the round trip. :meth:`discard` removes the temp file, whenever it gets
    created, unless it was committed; await it on every way out.

    ``unnamed``: an unnamed file made ahead (:mod:`peeros.files.spares`) to use instead;
    no thread is needed then.
    """

    def __init__(self, dest: Path, unnamed: int | None = None) -> None:
        if unnamed is None:
            self._created = _SAVE_THREADS.submit(SaveFile, dest)
            return
        self._created = concurrent.futures.Future()
        try:
            self._created.set_result(SaveFile(dest, unnamed))
        except BaseException:
            os.close(unnamed)
            raise

    async def writer(self) -> SaveFile:
        return await asyncio.wrap_future(self._created)

    def writer_blocking(self) -> SaveFile:
        """:meth:`writer`, waited for on the caller's thread."""
        return self._created.result()

    async def discard(self) -> None:
        # Registered first, so it has run by the time the wait below returns; should that
        # wait be cancelled, it still runs once the file exists.
        self._created.add_done_callback(_discard_created)
        with contextlib.suppress(Exception):  # a failed creation: nothing to remove
            await asyncio.wrap_future(self._created)

    def discard_blocking(self) -> None:
        """:meth:`discard`, waited for on the caller's thread."""
        self._created.add_done_callback(_discard_created)
        with contextlib.suppress(Exception):
            self._created.result()


def _discard_created(created: concurrent.futures.Future[SaveFile]) -> None:
    if not created.cancelled() and created.exception() is None:
        created.result().discard()


class SaveFile:
    """A download on its way to ``dest``: a temp file beside it, hashed while written,
    renamed over ``dest`` only when complete and matching; removed otherwise.

    Not fsynced (as with curl or wget, a download is as durable as the page cache);
    the rename alone makes it all or nothing. Peers, which store for others, fsync.
    """

    def __init__(self, dest: Path, unnamed: int | None = None) -> None:
        """``unnamed``: an unnamed file (``O_TMPFILE``, from :mod:`peeros.files.spares`) to
        write into instead of a named temp file; it is linked in as ``dest`` when
        published, and vanishes otherwise."""
        self.dest = dest
        self.temp_path: Path | None = None
        if unnamed is None:
            fd, tmp = tempfile.mkstemp(
                prefix=f".{dest.name[:100]}.", suffix=".part", dir=dest.parent
            )
            self.temp_path = Path(tmp)
            os.fchmod(fd, 0o644)
        else:
            fd = unnamed
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.size = 0
        self._done = False
        self._reserve = 0
        self._aligned = False
        self._direct = False  # O_DIRECT on; touched by the writer thread only

    def expect(self, size: int) -> None:
        """The body's announced size: space for it is reserved at the first write."""
        self._reserve = size

    def write(self, data: bytes) -> None:
        """Write and hash ``data`` here and now (a small body, on the event loop)."""
        self._file.write(data)
        self._hash.update(data)
        self.size += len(data)

    async def write_all(
        self, chunks: AsyncIterable[bytes], on_chunk: Callable[[int], None] | None = None
    ) -> None:
        """Write and hash a stream of chunks, several at a time in flight.

        Each chunk is handed to a writer thread and a hashing thread at once (both
        release the GIL; each is one FIFO thread, so bytes stay in order), and up to
        :data:`DEPTH` chunks may be queued before the next is read: a slow write
        (page allocation) or a slow hash does not stall the socket. Memory: DEPTH chunks.
        On any error every queued chunk is settled before the error propagates, so the
        file is never closed under a thread still using it.
        """
        inflight: collections.deque[asyncio.Future[tuple[None, None]]] = collections.deque()
        try:
            async for chunk in coalesce(chunks):
                if len(inflight) >= DEPTH:
                    await inflight.popleft()
                inflight.append(self._submit(chunk))
                self.size += len(chunk)
                if on_chunk is not None:
                    on_chunk(len(chunk))
            while inflight:
                await inflight.popleft()
        except BaseException:
            for pending in inflight:
                with contextlib.suppress(BaseException):
                    await pending
            raise

    def write_blocking(
        self,
        chunks: Iterable[bytes | memoryview],
        on_chunk: Callable[[int], None] | None = None,
        aligned: bool = False,
    ) -> None:
        """:meth:`write_all` for a blocking source (a socket read on the caller's thread,
        which releases the GIL while the writer and hashing threads work).

        ``aligned``: every chunk lies in a page-aligned buffer and all but the last are
        whole multiples of 4 KiB. A body of at least :data:`DIRECT_MIN` (its size given to
        :meth:`expect`) is then written with ``O_DIRECT``, past the page cache: filling
        the page cache with a big file costs 2-15x more CPU here than the disk path when
        it takes fresh pages (see docs/performance.md), and leaves no dirty pages behind.
        A file system without ``O_DIRECT`` is simply written through the page cache.
        """
        self._aligned = aligned
        inflight: collections.deque[_Pair] = collections.deque()
        try:
            for chunk in chunks:
                if len(inflight) >= DEPTH:
                    _wait_pair(inflight.popleft())
                inflight.append(self._start(chunk))
                self.size += len(chunk)
                if on_chunk is not None:
                    on_chunk(len(chunk))
            while inflight:
                _wait_pair(inflight.popleft())
        except BaseException:
            for pending in inflight:
                with contextlib.suppress(BaseException):
                    _wait_pair(pending)
            raise

    def _start(self, chunk: bytes | memoryview) -> _Pair:
        """Hand ``chunk`` to the writer and the hashing thread; their two futures."""
        if self._reserve:
            size, self._reserve = self._reserve, 0
            _WRITE_THREAD.submit(reserve, self._file.fileno(), size)
            if self._aligned and size >= DIRECT_MIN:
                _WRITE_THREAD.submit(self._set_direct, True)
        # One update per chunk: each update releases and retakes the GIL, and a thread
        # retaking it while the event loop holds it can wait a switch interval (5 ms);
        # 64 KiB slices measured 0.8 GB/s against 1.2 GB/s whole here.
        return _HASH_THREAD.submit(self._hash.update, chunk), _WRITE_THREAD.submit(
            self._write_chunk, chunk
        )

    def _write_chunk(self, chunk: bytes | memoryview) -> None:
        """Write one chunk (in the writer thread), with ``O_DIRECT`` while it is on."""
        if self._direct and len(chunk) % _ALIGN:
            self._set_direct(False)  # the tail: O_DIRECT takes whole blocks only
        if not self._direct:
            self._file.write(chunk)
            return
        view = memoryview(chunk)
        try:
            while view:
                view = view[os.write(self._file.fileno(), view) :]
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            self._set_direct(False)  # refused before writing anything: the usual way
            self._file.write(view)

    def _set_direct(self, on: bool) -> None:
        fd = self._file.fileno()
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        try:
            fcntl.fcntl(fd, fcntl.F_SETFL, flags | _O_DIRECT if on else flags & ~_O_DIRECT)
        except OSError:  # a file system without O_DIRECT (tmpfs): stay with the page cache
            return
        self._direct = on and bool(_O_DIRECT)

    def _submit(self, chunk: bytes) -> asyncio.Future[tuple[None, None]]:
        hashing, writing = self._start(chunk)
        return asyncio.gather(asyncio.wrap_future(hashing), asyncio.wrap_future(writing))

    def commit(self, expected: str) -> str:
        """Publish at ``dest`` if the bytes hash to ``expected``; return the hash."""
        actual = self.verify(expected)
        self.publish()
        return actual

    def verify(self, expected: str) -> str:
        """Close the temp file and check that its bytes hash to ``expected``; return the
        hash. The file stays a temp file until :meth:`publish` (or :meth:`discard`)."""
        if self.temp_path is None:
            self._file.flush()  # (kept open: an unnamed file is linked in through its fd)
        else:
            self._file.close()
        actual = self._hash.hexdigest()
        if actual != expected.lower():
            raise PeerOSError(
                f"the bytes received do not match the peer's SHA-256 ({expected}, got "
                f"{actual}); {self.dest} was not written"
            )
        return actual

    def name(self) -> None:
        """Give a verified unnamed file a temp name and close it (many verified files then
        wait for :meth:`publish` without holding a descriptor each)."""
        if self.temp_path is None:
            self.temp_path = link_temp(self._file.fileno(), self.dest)
            self._file.close()

    def publish(self) -> None:
        """Rename the verified temp file over ``dest`` (or link the unnamed one in)."""
        if self.temp_path is None:
            link_into(self._file.fileno(), self.dest)
            self._file.close()
        else:
            os.replace(self.temp_path, self.dest)
        self._done = True

    def discard(self) -> None:
        """Remove the temp file unless committed. Idempotent."""
        if not self._done:
            self._done = True
            self._file.close()
            if self.temp_path is not None:
                self.temp_path.unlink(missing_ok=True)

    def __enter__(self) -> SaveFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.discard()
