"""The shared-folder scanner: which files a folder holds, with their hashes.

A file is identified by name, size and SHA-256. Hashing is the expensive part, so
every entry is cached under its ``(size, mtime_ns, inode)`` key: a rescan re-reads a
file only when that key changed (as ``rsync``/``git`` do with stat data). The same
single read also produces the per-chunk hashes that downloaders verify against.

No network, no event loop: :meth:`Scanner.scan` is called in a thread.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peeros.files.names import InvalidFileName, check_filename

__all__ = ["CHUNK_BYTES", "Entry", "ScanResult", "Scanner", "hash_chunks"]

#: Default unit of multi-source downloads and of chunk verification.
CHUNK_BYTES = 4 << 20
_READ = 1 << 20


@dataclass(frozen=True)
class Entry:
    name: str
    size: int
    sha256: str
    chunk_size: int
    chunks: tuple[str, ...]
    #: the cache key: a file whose key is unchanged is not read again
    key: tuple[int, int, int]


@dataclass
class ScanResult:
    entries: dict[str, Entry]
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def changes(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def hash_chunks(path: Path, chunk_size: int) -> tuple[str, int, tuple[str, ...]]:
    """SHA-256 of the whole file, its size and the SHA-256 of each ``chunk_size`` piece."""
    whole = hashlib.sha256()
    chunks: list[str] = []
    size = 0
    with path.open("rb") as f:
        while True:
            piece = hashlib.sha256()
            left = chunk_size
            while left:
                data = f.read(min(_READ, left))
                if not data:
                    break
                whole.update(data)
                piece.update(data)
                left -= len(data)
                size += len(data)
            if left == chunk_size:
                break
            chunks.append(piece.hexdigest())
            if left:
                break
    return whole.hexdigest(), size, tuple(chunks)


class Scanner:
    """Scans one flat folder; hidden files (``.name``, e.g. partial downloads) are skipped."""

    def __init__(
        self,
        root: Path,
        chunk_size: int = CHUNK_BYTES,
        hasher: Callable[[Path, int], tuple[str, int, tuple[str, ...]]] = hash_chunks,
    ) -> None:
        self.root = root
        self.chunk_size = chunk_size
        self._hasher = hasher
        self.entries: dict[str, Entry] = {}
        #: how many files were read (hashed) since this scanner was made
        self.files_read = 0

    def dump(self) -> list[dict[str, Any]]:
        """The cache, as JSON-able rows (see :meth:`load`)."""
        return [
            {
                "name": e.name,
                "size": e.size,
                "sha256": e.sha256,
                "chunks": list(e.chunks),
                "key": list(e.key),
            }
            for e in self.entries.values()
        ]

    def load(self, rows: list[dict[str, Any]]) -> None:
        """Start from a cache saved by :meth:`dump` (same chunk size), so that a restart
        does not read unchanged files again. Malformed rows are ignored."""
        for r in rows:
            try:
                key = (int(r["key"][0]), int(r["key"][1]), int(r["key"][2]))
                chunks = tuple(str(c) for c in r["chunks"])
                e = Entry(
                    str(r["name"]), int(r["size"]), str(r["sha256"]), self.chunk_size, chunks, key
                )
            except (KeyError, TypeError, ValueError, IndexError):
                continue
            self.entries[e.name] = e

    def scan(self) -> ScanResult:
        """Rescan; return the new entries and what was added, changed and removed."""
        found: dict[str, Entry] = {}
        result = ScanResult(found)
        try:
            items = sorted(os.scandir(self.root), key=lambda e: e.name)
        except FileNotFoundError:
            items = []
        for item in items:
            if item.name.startswith(".") or not item.is_file(follow_symlinks=False):
                continue
            try:
                check_filename(item.name)
                st = item.stat(follow_symlinks=False)
            except (InvalidFileName, OSError):
                continue
            key = (st.st_size, st.st_mtime_ns, st.st_ino)
            old = self.entries.get(item.name)
            if old is not None and old.key == key:
                found[item.name] = old
                continue
            try:
                sha, size, chunks = self._hasher(Path(item.path), self.chunk_size)
            except OSError:  # vanished or unreadable between listing and reading
                continue
            self.files_read += 1
            found[item.name] = Entry(item.name, size, sha, self.chunk_size, chunks, key)
            if old is None:
                result.added.append(item.name)
            elif old.sha256 != sha or old.size != size:
                result.changed.append(item.name)
        result.removed = sorted(set(self.entries) - set(found))
        self.entries = found
        return result
