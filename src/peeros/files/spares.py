"""Unnamed files made ahead for downloads (``O_TMPFILE``), linked in once complete.

Creating a file, that is allocating its inode, is the slowest step of saving a small
download on this kind of disk: 35 µs normally, 0.3-1 ms when the file system has recently
deleted many files (see docs/performance.md). A download therefore takes a file made
ahead in its directory and asks for the next one in a background thread, so that the
allocation overlaps the whole previous download instead of its round trip only.

The files have no name until :func:`link_into` gives them their final one, whole and
verified (a single ``linkat``, or a link to a temp name and a rename over an existing
file): a download that fails, or a process that dies, leaves nothing behind, and spares
never used vanish when closed. A file system (or a system without ``/proc``) that cannot
do this makes :meth:`Spares.take` return ``None``; the caller then uses a named temp file.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import errno
import os
import secrets
import threading
from pathlib import Path

__all__ = ["SPARES", "link_into", "link_temp"]

#: Spare files kept ready per directory, and directories remembered.
PER_DIRECTORY = 2
MAX_DIRECTORIES = 8
_O_TMPFILE = getattr(os, "O_TMPFILE", 0)
_PROC_FD = "/proc/self/fd"


def _make(directory: str) -> int:
    fd = os.open(directory, _O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o644)  # explicit, as for named downloads: the umask does not change it
    except BaseException:
        os.close(fd)
        raise
    return fd


def link_temp(fd: int, dest: Path) -> Path:
    """Give the unnamed file ``fd`` a temp name beside ``dest`` (a ``.part`` file that
    listings of a peer's storage hide); returns it."""
    temp = dest.with_name(f".{dest.name[:100]}.{secrets.token_hex(4)}.part")
    proc = os.open(_PROC_FD, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.link(str(fd), temp, src_dir_fd=proc, follow_symlinks=True)
    finally:
        os.close(proc)
    return temp


def link_into(fd: int, dest: Path) -> None:
    """Give the unnamed file ``fd`` the name ``dest``, atomically: readers see the old file
    at ``dest`` or the new one, never a part of it."""
    proc = os.open(_PROC_FD, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            os.link(str(fd), dest, src_dir_fd=proc, follow_symlinks=True)
            return
        except FileExistsError:
            pass
        temp = link_temp(fd, dest)
        try:
            os.replace(temp, dest)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    finally:
        os.close(proc)


class Spares:
    """Unnamed files made ahead, per directory; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready: collections.OrderedDict[str, list[int]] = collections.OrderedDict()
        self._making: collections.Counter[str] = collections.Counter()
        self._refused: set[str] = set()
        self._maker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="peeros-spare")
        self.enabled = bool(_O_TMPFILE) and os.path.isdir(_PROC_FD)

    def take(self, directory: Path) -> int | None:
        """An unnamed file in ``directory`` (one made ahead, else a new one), and another
        one asked for; ``None`` if this file system cannot make them."""
        key = str(directory)
        if not self.enabled or key in self._refused:
            return None
        with self._lock:
            ready = self._ready.get(key)
            fd = ready.pop() if ready else None
            wanted = PER_DIRECTORY - len(ready or ()) - self._making[key]
            self._making[key] += max(0, wanted)
        for _ in range(wanted):
            self._maker.submit(self._make_spare, key)
        if fd is not None:
            return fd
        try:
            return _make(key)
        except OSError as exc:  # (no such directory, say: the caller's own path will say so)
            if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):  # no O_TMPFILE
                with self._lock:
                    self._refused.add(key)
            return None

    def _make_spare(self, key: str) -> None:
        try:
            fd = _make(key)
        except OSError:
            with self._lock:
                self._making[key] -= 1
            return
        with self._lock:
            self._making[key] -= 1
            self._ready.setdefault(key, []).append(fd)
            self._ready.move_to_end(key)
            extra = []
            while len(self._ready) > MAX_DIRECTORIES:
                extra.extend(self._ready.popitem(last=False)[1])
        for old in extra:
            os.close(old)

    def close(self) -> None:
        """Close every spare (they vanish: they have no name)."""
        with self._lock:
            ready, self._ready = self._ready, collections.OrderedDict()
        for fds in ready.values():
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)


#: The process's spares, shared by its clients.
SPARES = Spares()
