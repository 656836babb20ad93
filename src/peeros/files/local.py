"""A peer's own file storage: ``<data dir>/files/``, one directory entry per stored name.

Everything here is synchronous file-system work (callers run it in a thread). Names are
checked by :func:`peeros.files.names.safe_join`; bytes arrive through an
:class:`~peeros.files.atomic.AtomicWriter` (temp file, fsync, rename), so a stored name
only ever shows a complete, verified file.

Each file's SHA-256 is kept in a sidecar, ``<data dir>/files-meta/<sha256 of name>.json``,
together with the inode, size and mtime it describes. A sidecar that does not match the
file it names (a crash between rename and sidecar write, two uploads racing on one name,
a file changed by hand) is never trusted: the hash is recomputed from the bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from io import BufferedReader
from pathlib import Path

from peeros.errors import BadRequest, NotFound, PayloadTooLarge
from peeros.files.atomic import AtomicWriter, HashMismatch
from peeros.files.names import PARTIAL_PREFIX, InvalidFileName, check_filename, join_resolved
from peeros.fsutil import write_atomic
from peeros.protocol import FileInfo

__all__ = ["LocalFiles", "check_filename_or_400", "check_sha256", "file_sha256"]

log = logging.getLogger(__name__)

_HEX = frozenset("0123456789abcdef")
_READ = 1 << 20
_HASH_SLICE = 64 << 10
#: Sidecars remembered in memory (a dict lookup instead of a JSON read per download).
_MEMO_MAX = 4096


def check_filename_or_400(name: str) -> str:
    """:func:`~peeros.files.names.check_filename`, failing as a :class:`BadRequest`."""
    try:
        return check_filename(name)
    except InvalidFileName as exc:
        raise BadRequest(f"bad file name: {exc}") from exc


def check_sha256(value: str | None) -> str | None:
    """A SHA-256 given by a caller: 64 hex digits (any case), returned lower-case."""
    if value is None:
        return None
    digest = value.strip().lower()
    if len(digest) != 64 or not set(digest) <= _HEX:
        raise BadRequest(f"SHA-256 must be 64 hex digits, got {value[:80]!r}")
    return digest


def file_sha256(fobj: BufferedReader) -> str:
    """SHA-256 of an open file from its start, in constant memory."""
    h = hashlib.sha256()
    buf = bytearray(_READ)
    view = memoryview(buf)
    fobj.seek(0)
    while n := fobj.readinto(buf):
        for start in range(0, n, _HASH_SLICE):
            h.update(view[start : min(n, start + _HASH_SLICE)])
    fobj.seek(0)
    return h.hexdigest()


class LocalFiles:
    """The files this peer stores for others (and for its own user)."""

    def __init__(self, root: Path, max_bytes: int, peer_id: str) -> None:
        self.root = root
        self.meta = root.parent / "files-meta"
        self.max_bytes = max_bytes
        self.peer_id = peer_id
        # name -> (stamp, sha256): the sidecar's content, trusted only for the same stamp.
        self._memo: dict[str, tuple[dict[str, object], str]] = {}
        for directory in (self.root, self.meta):
            directory.mkdir(parents=True, exist_ok=True)
            os.chmod(directory, 0o700)
        self._base = self.root.resolve()
        self._clean()

    # --- names and errors --------------------------------------------------------------

    def path(self, name: str) -> Path:
        try:
            return join_resolved(self._base, name)
        except InvalidFileName as exc:
            raise BadRequest(f"bad file name: {exc}") from exc

    def _missing(self, name: str) -> NotFound:
        return NotFound(f"no file {name!r} on peer {self.peer_id}")

    def too_large(self, size: int | None = None) -> PayloadTooLarge:
        what = f"{size} bytes" if size is not None else "the upload goes"
        return PayloadTooLarge(
            f"file too large: {what} over this peer's limit of {self.max_bytes} bytes "
            f"({self.max_bytes / (1 << 20):g} MiB); nothing was stored"
        )

    # --- writing -----------------------------------------------------------------------

    def begin(self, name: str, declared_size: int | None) -> AtomicWriter:
        """A writer for ``name``; refuses a declared size over the limit before any byte."""
        path = self.path(name)
        if declared_size is not None and declared_size > self.max_bytes:
            raise self.too_large(declared_size)
        return AtomicWriter(path, max_bytes=self.max_bytes)

    def publish(self, writer: AtomicWriter, name: str, expected: str | None) -> FileInfo:
        """Verify and publish what ``writer`` received; record its hash."""
        ino = os.stat(writer.temp_path).st_ino
        try:
            digest = writer.commit(expected)
        except HashMismatch as exc:
            raise BadRequest(
                f"upload of {name!r} does not match its SHA-256: sent {exc.expected}, "
                f"received bytes hash to {exc.actual}; nothing was stored"
            ) from exc
        st = os.stat(writer.path)
        if st.st_ino == ino:  # else another upload of this name already replaced ours
            self._save_meta(name, st, digest)
        return self._info(name, st, digest)

    # --- reading -----------------------------------------------------------------------

    def open(self, name: str) -> tuple[BufferedReader, FileInfo]:
        """Open ``name`` for reading, with the metadata of exactly the bytes opened."""
        opened = self._open(name, known_only=False)
        assert opened is not None
        return opened

    def open_known(self, name: str) -> tuple[BufferedReader, FileInfo] | None:
        """:meth:`open` if the file's hash is known in memory, else ``None``: only ``open``
        and ``fstat`` touch the disk, cheap enough to call from an event loop."""
        return self._open(name, known_only=True)

    def _open(self, name: str, known_only: bool) -> tuple[BufferedReader, FileInfo] | None:
        path = self.path(name)
        try:
            fobj = open(path, "rb")  # noqa: SIM115 - the caller closes it
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise self._missing(name) from exc
        try:
            st = os.fstat(fobj.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise self._missing(name)
            memo = self._memo.get(name)
            if memo is not None and memo[0] == self._stamp(name, st):
                return fobj, self._info(name, st, memo[1])
            if known_only:
                fobj.close()
                return None
            return fobj, self._info(name, st, self._sha256(name, st, fobj))
        except BaseException:
            fobj.close()
            raise

    def info(self, name: str) -> FileInfo:
        fobj, info = self.open(name)
        fobj.close()
        return info

    def list(self) -> list[FileInfo]:
        infos = []
        with os.scandir(self.root) as entries:
            names = sorted(e.name for e in entries if e.is_file(follow_symlinks=False))
        for name in names:
            try:
                check_filename(name)
                infos.append(self.info(name))
            except (InvalidFileName, NotFound):
                continue  # a reserved/odd name put there by hand, or removed meanwhile
        return infos

    def delete(self, name: str) -> None:
        path = self.path(name)
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise self._missing(name) from exc
        self._memo.pop(name, None)
        self._meta_path(name).unlink(missing_ok=True)

    # --- metadata ----------------------------------------------------------------------

    def _info(self, name: str, st: os.stat_result, digest: str) -> FileInfo:
        return FileInfo(
            name=name,
            size=st.st_size,
            sha256=digest,
            modified=st.st_mtime,
            peer_id=self.peer_id,
        )

    def _meta_path(self, name: str) -> Path:
        return self.meta / (hashlib.sha256(name.encode()).hexdigest() + ".json")

    @staticmethod
    def _stamp(name: str, st: os.stat_result) -> dict[str, object]:
        return {"name": name, "ino": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns}

    def _remember(self, name: str, stamp: dict[str, object], digest: str) -> None:
        if len(self._memo) >= _MEMO_MAX:
            self._memo.clear()
        self._memo[name] = (stamp, digest)

    def _save_meta(self, name: str, st: os.stat_result, digest: str) -> None:
        stamp = self._stamp(name, st)
        self._remember(name, stamp, digest)
        record = {**stamp, "sha256": digest}
        try:
            write_atomic(self._meta_path(name), json.dumps(record).encode(), 0o600)
        except OSError as exc:  # the hash can always be recomputed
            log.warning("cannot record the hash of %r: %s", name, exc)

    def _sha256(self, name: str, st: os.stat_result, fobj: BufferedReader) -> str:
        stamp = self._stamp(name, st)
        memo = self._memo.get(name)
        if memo is not None and memo[0] == stamp:
            return memo[1]
        try:
            record = json.loads(self._meta_path(name).read_bytes())
            if {k: record.get(k) for k in ("name", "ino", "size", "mtime_ns")} == stamp:
                self._remember(name, stamp, str(record["sha256"]))
                return str(record["sha256"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        digest = file_sha256(fobj)
        self._save_meta(name, st, digest)
        return digest

    def _clean(self) -> None:
        """Remove temp files of uploads cut off by a crash, and sidecars of gone files."""
        for entry in self.root.iterdir():
            if entry.name.startswith(PARTIAL_PREFIX):
                entry.unlink(missing_ok=True)
        for sidecar in self.meta.iterdir():
            try:
                name = json.loads(sidecar.read_bytes())["name"]
                if not (self.root / check_filename(name)).exists():
                    sidecar.unlink(missing_ok=True)
            except (OSError, ValueError, KeyError, TypeError, InvalidFileName):
                sidecar.unlink(missing_ok=True)
