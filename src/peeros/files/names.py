"""Safe names for files stored on a peer (SPEC §5: "safe names, no path traversal").

A stored file's name arrives from the network and becomes one directory entry
in the peer's storage directory, so it must be a single path component that
means the same on every peer: no separators, no ``.``/``..``, no control
characters (NUL truncates C strings, newlines forge log lines and listings),
at most 255 bytes of UTF-8 (the ``NAME_MAX`` of ext4, XFS, btrfs and APFS).
Names are checked and refused, never silently rewritten, so a client always
knows the exact name it stored. ``safe_join`` adds a second, independent guard
on the resolved path, the defence in depth Syncthing and Tahoe-LAFS apply to
names received from peers.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

__all__ = [
    "MAX_NAME_BYTES",
    "PARTIAL_PREFIX",
    "InvalidFileName",
    "check_filename",
    "join_resolved",
    "safe_join",
]

MAX_NAME_BYTES = 255
# Temporary files of ``atomic.AtomicWriter`` start with this; listings hide them,
# so no stored file may use it.
PARTIAL_PREFIX = ".part-"
# Cc: C0/C1 controls incl. NUL and DEL; Zl/Zp: Unicode line/paragraph separators.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


class InvalidFileName(ValueError):
    """A file name that must not be stored; the message names the problem."""


def check_filename(name: str) -> str:
    """Return ``name`` unchanged if it is a safe single file name, else raise.

    Allowed: any Unicode text of 1..255 UTF-8 bytes that is not only whitespace,
    contains no ``/``, ``\\`` or control character, is not ``.`` or ``..`` and
    does not start with the reserved ``.part-`` prefix. Leading ``-``, spaces,
    dots and non-ASCII letters are fine.
    """
    if not isinstance(name, str):
        raise InvalidFileName(f"file name must be a string, not {type(name).__name__}")
    if not name:
        raise InvalidFileName("file name must not be empty")
    if name in (".", ".."):
        raise InvalidFileName(f"file name must not be {name!r}")
    for sep in ("/", "\\"):
        if sep in name:
            raise InvalidFileName(f"file name must not contain {sep!r}")
    if "\x00" in name:
        raise InvalidFileName("file name must not contain NUL")
    for ch in name:
        if unicodedata.category(ch) in _FORBIDDEN_CATEGORIES:
            raise InvalidFileName(f"file name must not contain control character U+{ord(ch):04X}")
    if name.isspace():
        raise InvalidFileName("file name must not be only whitespace")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidFileName("file name must be valid Unicode (no lone surrogates)") from None
    if size > MAX_NAME_BYTES:
        raise InvalidFileName(f"file name is {size} bytes in UTF-8; the limit is {MAX_NAME_BYTES}")
    if name.startswith(PARTIAL_PREFIX):
        raise InvalidFileName(f"file name must not start with {PARTIAL_PREFIX!r} (reserved)")
    return name


def safe_join(root: Path, name: str) -> Path:
    """The path of ``name`` directly inside ``root``, after ``check_filename``.

    Both paths are resolved (symlinks followed), and the result must have the
    resolved root as its parent: a symlink planted in the storage directory
    that points elsewhere is refused rather than followed.
    """
    return join_resolved(root.resolve(), name)


def join_resolved(base: Path, name: str) -> Path:
    """:func:`safe_join` for a ``base`` already resolved (a store resolves its root once).

    ``name`` is one checked component, so ``base / name`` can only lead elsewhere if it
    is a symlink: one ``lstat`` decides, instead of resolving every component again.
    """
    check_filename(name)
    path = base / name
    if path.is_symlink():
        path = path.resolve()
        if path.parent != base:
            raise InvalidFileName(f"file name {name!r} resolves outside the storage directory")
    return path
