"""Parts of the task worker (:mod:`peeros.compute.sandbox`) that hold no task state: the
privilege drop it performs before reading a task, the line reader of its protocol pipe,
the per-task limits and measurements, and the clean-up of what a task left behind.

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
#: How long the clean-up waits for threads to finish exiting before recycling the worker
#: (``Thread.join()`` returns before the thread has left the kernel).
THREAD_EXIT_GRACE = 0.05
#: A lower bound of the time the kernel needs to hand out one pid, far below what any
#: machine achieves (each clone and each exit takes ``pidmap_lock`` and ``tasklist_lock``
#: for longer than this), so a full cycle of the pid allocator takes at least
#: ``(pid_max - PID_CYCLE_SLACK) * SECONDS_PER_PID_MIN`` (3 ms with pid_max = 32768).
SECONDS_PER_PID_MIN = 1e-7
#: The kernel's RESERVED_PIDS (where allocation resumes after a wrap) plus the most pids
#: that can be in use in a sandbox (its RLIMIT_NPROC, the init and the worker).
PID_CYCLE_SLACK = 600


#: Bytes asked of the pipe per read.
READ_SIZE = 1 << 16


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
        # 64 KiB: under malloc's mmap threshold, so a read costs no mmap/munmap of its
        # own buffer (1 MiB did, three system calls and a page fault per message).
        data = os.read(self.fd, READ_SIZE)
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


class ProcFile:
    """A /proc file kept open and re-read with one ``pread`` at offset 0 (sysctl and
    seq_file contents are generated anew by every read from offset 0) instead of the
    open/read/close of a path. The task runs in this process and may close or replace
    the descriptor: :meth:`intact` says whether it is still the file opened."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1
        self._reopen()

    def _reopen(self) -> None:
        self.fd = os.open(self.path, os.O_RDONLY)  # not inherited by exec (PEP 446)
        st = os.fstat(self.fd)
        self._ident = (st.st_dev, st.st_ino)

    def read(self) -> bytes:
        try:
            return os.pread(self.fd, 256, 0)
        except OSError:  # closed (maybe reused) by the task: a descriptor of our own again
            self._reopen()
            return os.pread(self.fd, 256, 0)

    def intact(self) -> bool:
        """Whether the descriptor still is the file opened; if not, it is opened again."""
        try:
            st = os.fstat(self.fd)
            if (st.st_dev, st.st_ino) == self._ident:
                return True
        except OSError:
            pass
        self._reopen()
        return False


def children_cpu() -> float:
    """CPU seconds of the reaped children (and their reaped descendants) of this process."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return kids.ru_utime + kids.ru_stime


class TaskWatch:
    """The CPU, wall time and address space around one task, and whether the task may
    have left a process or a thread behind (:meth:`end`'s ``quiet``).

    In a pid namespace, ``/proc/sys/kernel/ns_last_pid`` is the last pid allocated in it,
    to processes and threads alike; the task cannot set it (that needs
    CAP_CHECKPOINT_RESTORE, as does choosing a pid with ``clone3``). Every task starts
    alone with this thread (leftovers are killed or the worker is recycled), so an
    unchanged value means the task created no process and no thread — unless the
    allocator went round a full cycle, which :data:`SECONDS_PER_PID_MIN` rules out for a
    task shorter than ``quiet_wall``. Then no clean-up is needed, and no child was reaped
    either: ``RUSAGE_CHILDREN`` is as it was after the last clean-up (kept in ``kids``).
    (Like every check made in this process, it guards against what a task does by
    accident: a task can defeat any of them on purpose, not the sandbox's hard limits.)
    """

    def __init__(self, pidns: bool) -> None:
        self.statm = ProcFile("/proc/self/statm")
        self.page = resource.getpagesize()
        self.last_pid: ProcFile | None = None
        self.quiet_wall = 0.0
        if pidns:
            self.last_pid = ProcFile("/proc/sys/kernel/ns_last_pid")
            with open("/proc/sys/kernel/pid_max") as f:
                cycle = int(f.read()) - PID_CYCLE_SLACK
            self.quiet_wall = max(cycle, 0) * SECONDS_PER_PID_MIN
        self.kids = children_cpu()
        self._pid0, self._own0, self._kids0, self._wall0 = b"", 0.0, 0.0, 0.0

    def address_space(self) -> int:
        """This process's address space in bytes (``/proc/self/statm``'s first field)."""
        for _ in range(2):
            fields = self.statm.read().split()
            if len(fields) == 7 and fields[0].isdigit():
                return int(fields[0]) * self.page
            self.statm.intact()  # not statm's format: a descriptor the task replaced
        raise OSError("cannot read /proc/self/statm")

    def begin(self) -> float:
        """Start measuring; returns the CPU seconds used so far (own and reaped children)."""
        self._wall0 = time.perf_counter()
        if self.last_pid is not None:
            self._pid0 = self.last_pid.read()
        else:
            self.kids = children_cpu()
        self._kids0 = self.kids
        self._own0 = time.process_time()
        return self._own0 + self._kids0

    def end(self) -> tuple[float, float, bool]:
        """``(CPU seconds, wall seconds, quiet)`` of the task since :meth:`begin`; not quiet:
        it may have left something behind (:func:`cleanup` must look)."""
        own = time.process_time()
        quiet = False
        if self.last_pid is not None:
            quiet = self.last_pid.read() == self._pid0 and self.last_pid.intact()
        wall = time.perf_counter() - self._wall0
        quiet = quiet and wall < self.quiet_wall
        if not quiet:
            self.kids = children_cpu()
        return own - self._own0 + self.kids - self._kids0, wall, quiet

    def after_cleanup(self) -> None:
        """The clean-up reaped children: their CPU is not the next task's."""
        if self.last_pid is not None:
            self.kids = children_cpu()


class TaskLimits:
    """Soft RLIMIT_AS and RLIMIT_CPU for one task under the worker's hard limits, which are
    read once: only a task can change them (lower them: raising needs a capability), and
    then restoring fails and they are read again."""

    def __init__(self) -> None:
        self._read_hard()

    def _read_hard(self) -> None:
        self.as_hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        self.cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)[1]

    def enter(self, as_soft: int, cpu_soft: int) -> None:
        if self.as_hard != resource.RLIM_INFINITY:
            as_soft = min(as_soft, self.as_hard)
        if self.cpu_hard != resource.RLIM_INFINITY:
            cpu_soft = min(cpu_soft, self.cpu_hard)
        resource.setrlimit(resource.RLIMIT_AS, (as_soft, self.as_hard))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_soft, self.cpu_hard))

    def restore(self) -> None:
        """Soft = hard again (no limit of the task outlives it)."""
        try:
            resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_hard, self.cpu_hard))
            resource.setrlimit(resource.RLIMIT_AS, (self.as_hard, self.as_hard))
        except ValueError:  # the task lowered a hard limit
            self._read_hard()
            resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_hard, self.cpu_hard))
            resource.setrlimit(resource.RLIMIT_AS, (self.as_hard, self.as_hard))


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
    deadline = time.monotonic() + THREAD_EXIT_GRACE
    while threads > 1 and time.monotonic() < deadline:
        time.sleep(0.001)  # a thread joined by the task may still be on its way out
        threads = self_stat()[1]
    if threads > 1:
        recycle = f"the task left {threads - 1} thread(s) running"
    return note, recycle
