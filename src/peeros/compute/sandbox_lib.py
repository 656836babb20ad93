"""Parts of the task worker (:mod:`peeros.compute.sandbox`) that hold no worker state: the
privilege drop it performs before reading a task, the line reader of its protocol pipe,
and the clean-up of what a task left behind.

The worker runs as a plain script (``python -I sandbox.py``: neither its directory nor the
``peeros`` package is on ``sys.path``), so it loads this file by path; this module imports
nothing from PeerOS either.
"""

from __future__ import annotations

import ctypes
import os
import resource
import select
import signal
import time
from contextlib import suppress

_PR_SET_DUMPABLE = 4
_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38
#: How long the post-task cleanup waits for killed processes to disappear.
CLEANUP_TIMEOUT = 2.0


class Lines:
    """Newline-delimited messages from a pipe, readable without blocking too: between
    tasks the worker looks at what already arrived (a revoke must be seen before the
    reply that would let the peer think the revoked task started)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buf = bytearray()
        self._scanned = 0  # no newline before this offset (big messages: no rescans)
        self._eof = False

    def _fill(self) -> bool:
        data = os.read(self.fd, 1 << 20)
        if not data:
            self._eof = True
            return False
        self._buf += data
        return True

    def _line(self) -> bytes | None:
        i = self._buf.find(b"\n", self._scanned)
        if i < 0:
            self._scanned = len(self._buf)
            return None
        line = bytes(self._buf[: i + 1])
        del self._buf[: i + 1]
        self._scanned = 0
        return line

    def readline(self) -> bytes:
        """The next line; what is left (maybe b"") at end of file."""
        while (line := self._line()) is None:
            if self._eof or not self._fill():
                rest = bytes(self._buf)
                self._buf.clear()
                return rest
        return line

    def available(self) -> bytes | None:
        """The next line if it can be had without blocking, else None."""
        while (line := self._line()) is None:
            if self._eof or not select.select([self.fd], [], [], 0)[0] or not self._fill():
                return None
        return line


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def _drop_bounding_set() -> None:
    """Empty the capability bounding set (needs CAP_SETPCAP; best effort without it)."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    for cap in range(last + 1):
        try:
            _prctl(_PR_CAPBSET_DROP, cap)
        except OSError:
            return


def _set_hard(res: int, value: int) -> None:
    _, hard = resource.getrlimit(res)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(res, (value, value))


def drop_privileges(opts: dict[str, int]) -> None:
    """Become the unprivileged uid/gid and lock the process down; verify it worked."""
    was_root = os.geteuid() == 0
    if was_root:
        _drop_bounding_set()
        os.setgroups([])
        os.setresgid(opts["gid"], opts["gid"], opts["gid"])
        os.setresuid(opts["uid"], opts["uid"], opts["uid"])
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)
    _prctl(_PR_SET_DUMPABLE, 0)
    _set_hard(resource.RLIMIT_NPROC, opts["nproc"])
    _set_hard(resource.RLIMIT_NOFILE, opts["nofile"])
    _set_hard(resource.RLIMIT_FSIZE, opts["fsize"])
    _set_hard(resource.RLIMIT_CORE, 0)
    _set_hard(resource.RLIMIT_AS, opts["max-as"])
    if was_root and (os.getuid() != opts["uid"] or _capabilities() != 0):
        raise SystemExit("sandbox: failed to drop privileges")


def _capabilities() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return -1


def self_stat() -> tuple[int, int]:
    """``(address space in bytes, threads)`` of this process, from one read of
    /proc/self/stat (fields 23 and 20; /proc/self/status costs several times more)."""
    fd = os.open("/proc/self/stat", os.O_RDONLY)
    try:
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    fields = data[data.rindex(b")") + 2 :].split()  # the name may hold spaces
    return int(fields[20]), int(fields[17])


def _other_processes(pidns: bool, me: int) -> list[int]:
    """Processes of this sandbox other than us (pid ``me``) and the namespace init."""
    sid = 0 if pidns else os.getsid(0)
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in (me, 1):
            continue
        pid = int(name)
        if not pidns:  # no pid namespace: only our session is ours
            try:
                if os.getsid(pid) != sid:
                    continue
            except OSError:
                continue
        found.append(pid)
    return found


def _reap_children() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def cleanup(pidns: bool, me: int) -> tuple[str | None, str | None]:
    """Kill what the task left behind. Returns ``(note, reason to recycle the worker)``.

    In a pid namespace ``kill(-1)`` reaches every process of our uid there but us and the
    init; without one, only the processes of our session are ours to kill."""
    note = recycle = None
    others = _other_processes(pidns, me)
    if others:
        note = f"killed {len(others)} process(es) the task left behind"
        deadline = time.monotonic() + CLEANUP_TIMEOUT
        while others and time.monotonic() < deadline:
            for pid in [-1] if pidns else others:
                with suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            _reap_children()
            others = _other_processes(pidns, me)
            if others:
                time.sleep(0.005)  # the namespace init reaps orphans asynchronously
        if others:
            recycle = f"{len(others)} process(es) survived the cleanup"
    threads = self_stat()[1]
    if threads > 1:
        recycle = f"the task left {threads - 1} thread(s) running"
    return note, recycle
