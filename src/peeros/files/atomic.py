"""Crash-safe, verified file writes: a file appears whole and checked, or not at all.

The classic write-temp / fsync / rename / fsync-directory sequence (as in
Tahoe-LAFS's ``fileutil`` and Syncthing's temporary ``.syncthing.*.tmp``
files): bytes stream into a ``.part-*`` file in the destination directory,
so the final ``os.replace`` is an atomic rename on the same file system.
Readers therefore see either the old file or the complete new one, never a
prefix, and an upload that fails, is cut off or does not match its announced
SHA-256 leaves nothing behind under the final name. Listings hide names that
start with ``names.PARTIAL_PREFIX``; ``names.check_filename`` refuses them.

The size limit is checked before each write, so a peer never stores more
than ``max_bytes`` of an oversized upload (SPEC §5: "size limits"). Files are
created owner-only (0600) by default: storage is the peer's, not the host's.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from types import TracebackType

from peeros.files.names import PARTIAL_PREFIX

__all__ = ["AtomicWriter", "HashMismatch", "TooLarge"]

# NOTES.md: without SHA-NI, hashlib is ~1.7x faster fed 64 KiB than 1 MiB at a time.
_HASH_SLICE = 64 * 1024


class TooLarge(Exception):
    """Writing would exceed the writer's ``max_bytes``; nothing past it was written."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"file exceeds the size limit of {limit} bytes")
        self.limit = limit


class HashMismatch(Exception):
    """The written bytes do not have the expected SHA-256; the file was discarded."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"SHA-256 mismatch: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


class AtomicWriter:
    """Stream bytes into ``path`` atomically, hashing and counting them on the way.

    ``write`` any number of times, then ``commit`` to publish, or ``abort`` to
    discard. As a context manager, leaving the block by an exception, or
    without calling ``commit``, discards the file: nothing is published
    implicitly. A ``TooLarge`` from ``write`` aborts the writer at once.
    ``sha256=False`` skips hashing, for bytes verified elsewhere (an owned file's
    ciphertext: the owner checks its AEAD tags when it reads it back).
    ``path`` should come from ``names.safe_join``.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int | None = None,
        mode: int = 0o600,
        sha256: bool = True,
    ) -> None:
        if max_bytes is not None and max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.path = Path(path)
        self.max_bytes = max_bytes
        fd, tmp = tempfile.mkstemp(prefix=PARTIAL_PREFIX, dir=self.path.parent)
        self.temp_path = Path(tmp)
        try:
            os.fchmod(fd, mode)  # explicit, so the umask cannot widen or narrow it
            self._file = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            self.temp_path.unlink(missing_ok=True)
            raise
        self._hash = hashlib.sha256() if sha256 else None
        self._size = 0
        self._state = "open"  # -> "committed" | "aborted"

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data``; ``TooLarge`` (and abort) if it would pass ``max_bytes``."""
        self._check_open()
        view = memoryview(data).cast("B")
        if self.max_bytes is not None and self._size + len(view) > self.max_bytes:
            self.abort()
            raise TooLarge(self.max_bytes)
        self._file.write(view)
        if self._hash is not None:
            for start in range(0, len(view), _HASH_SLICE):
                self._hash.update(view[start : start + _HASH_SLICE])
        self._size += len(view)

    def commit(self, expected_sha256: str | None = None) -> str:
        """Make the file durable, verify it, publish it; return its SHA-256 (hex), or
        ``""`` for a writer made with ``sha256=False`` (which cannot verify one).

        On ``HashMismatch`` (or any failure) the temporary file is removed and
        nothing appears under ``path``.
        """
        self._check_open()
        if self._hash is None and expected_sha256 is not None:
            raise ValueError("this writer does not hash: it cannot check a SHA-256")
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            actual = self._hash.hexdigest() if self._hash is not None else ""
            if expected_sha256 is not None and expected_sha256.lower() != actual:
                raise HashMismatch(expected_sha256, actual)
            os.replace(self.temp_path, self.path)
        except BaseException:
            self.abort()
            raise
        self._state = "committed"
        _fsync_directory(self.path.parent)
        return actual

    def abort(self) -> None:
        """Discard the temporary file. Idempotent; a no-op after ``commit``."""
        if self._state != "open":
            return
        self._state = "aborted"
        try:
            self._file.close()
        finally:
            self.temp_path.unlink(missing_ok=True)

    def _check_open(self) -> None:
        if self._state != "open":
            raise RuntimeError(f"AtomicWriter for {self.path} is already {self._state}")

    def __enter__(self) -> AtomicWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()


def _fsync_directory(directory: Path) -> None:
    """Persist the rename itself (POSIX: the directory entry needs its own fsync)."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
