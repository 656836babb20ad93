"""A holder's side of owned files: opaque blobs under ``<data>/owned/<owner id>/<name>``.

The holder never sees plaintext or a usable key: each blob is the owner's wrapped file
key followed by the ``PEEROS-ENC1`` ciphertext stream (see :mod:`peeros.files.crypto`),
and the holder's code treats it as bytes, exactly like any stored file (syncthing's
untrusted devices work the same way). Writes go through an
:class:`~peeros.files.atomic.AtomicWriter`; a per-owner quota is checked against the
declared size *before* a byte is written. Synchronous: callers use a thread.
"""

from __future__ import annotations

import os
import shutil
import stat
from io import BufferedReader
from pathlib import Path

from peeros.errors import BadRequest, NotFound, QuotaExceeded
from peeros.files.atomic import AtomicWriter
from peeros.files.local import check_filename_or_400
from peeros.files.names import PARTIAL_PREFIX, InvalidFileName, safe_join
from peeros.protocol import PEER_ID_RE

__all__ = ["OwnedStore"]


class OwnedStore:
    """Ciphertext blobs held for other peers, with a byte quota per owner."""

    def __init__(self, root: Path, quota_bytes: int, peer_id: str) -> None:
        self.root = root
        self.quota_bytes = quota_bytes
        self.peer_id = peer_id
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        self._clean()

    def _owner_dir(self, owner_id: str) -> Path:
        if not PEER_ID_RE.match(owner_id):
            raise BadRequest(f"owner must be a peer id, got {owner_id[:60]!r}")
        return self.root / owner_id

    def path(self, owner_id: str, name: str) -> Path:
        check_filename_or_400(name)
        try:
            return safe_join(self._owner_dir(owner_id), name)
        except InvalidFileName as exc:
            raise BadRequest(f"bad file name: {exc}") from exc

    def usage(self, owner_id: str) -> int:
        """Bytes held for ``owner_id`` (partial uploads included: they take disk too)."""
        directory = self._owner_dir(owner_id)
        if not directory.is_dir():
            return 0
        with os.scandir(directory) as entries:
            return sum(e.stat().st_size for e in entries if e.is_file(follow_symlinks=False))

    def begin(self, owner_id: str, name: str, declared_size: int | None) -> AtomicWriter:
        """A writer for the blob; refused (429) before any byte if over the owner's quota."""
        path = self.path(owner_id, name)
        if declared_size is None:
            raise BadRequest("an owned-file upload must declare its Content-Length")
        replaced = path.stat().st_size if path.is_file() else 0
        used = self.usage(owner_id) - replaced
        if used + declared_size > self.quota_bytes:
            raise QuotaExceeded(
                f"owner {owner_id} would hold {used + declared_size} bytes on peer "
                f"{self.peer_id}, over its quota of {self.quota_bytes} bytes "
                f"({self.quota_bytes / (1 << 20):g} MiB); nothing was stored"
            )
        path.parent.mkdir(mode=0o700, exist_ok=True)
        # No hash: the owner authenticates every chunk (AEAD) when it reads the blob back.
        return AtomicWriter(path, max_bytes=declared_size, sha256=False)

    def open(self, owner_id: str, name: str) -> tuple[BufferedReader, int]:
        """The blob, opened for reading, and its size."""
        path = self.path(owner_id, name)
        try:
            fobj = open(path, "rb")  # noqa: SIM115 - the caller closes it
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise self._missing(owner_id, name) from exc
        st = os.fstat(fobj.fileno())
        if not stat.S_ISREG(st.st_mode):
            fobj.close()
            raise self._missing(owner_id, name)
        return fobj, st.st_size

    def delete(self, owner_id: str, name: str) -> None:
        path = self.path(owner_id, name)
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise self._missing(owner_id, name) from exc

    def _missing(self, owner_id: str, name: str) -> NotFound:
        return NotFound(f"peer {self.peer_id} holds no owned file {name!r} of {owner_id}")

    def _clean(self) -> None:
        """Remove temp files of uploads cut off by a crash."""
        for directory in self.root.iterdir():
            if not directory.is_dir():
                continue
            for entry in directory.iterdir():
                if entry.name.startswith(PARTIAL_PREFIX):
                    entry.unlink(missing_ok=True)
            if not any(directory.iterdir()):
                shutil.rmtree(directory, ignore_errors=True)
