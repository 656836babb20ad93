"""The worker program that runs untrusted task code: ``python -I -m peeros.compute.sandbox``.

It starts (normally inside a bubblewrap sandbox, see :mod:`peeros.compute.bwrap`) as root,
and before it reads a single task it drops everything it does not need: supplementary
groups, then gid and uid (65534 by default, so RLIMIT_NPROC is enforced — NOTES: it is
not for root), ``PR_SET_NO_NEW_PRIVS``, ``PR_SET_DUMPABLE=0``, and hard rlimits for
processes, open files, file size, core dumps and address space. Nothing is unpickled
before that point.

Then it serves tasks one at a time over newline-delimited JSON on private copies of its
stdin/stdout (fd 0 becomes ``/dev/null`` and fd 1 goes to stderr, so a task's ``print``
lands in the peer's log instead of corrupting the protocol). Forking per task costs
~1.2-1.6 ms here (NOTES), so the worker is reused for many tasks of ONE owner — the
trust boundary, like a Ray worker per job. Each task gets:

* a private working directory ``/tmp/task-<n>``, removed afterwards unless the task left
  it exactly as it found it (empty, mode 0700), in which case the next task reuses it;
* soft RLIMIT_AS = current address space + the task's ``memory`` (→ ``MemoryError``) and
  soft RLIMIT_CPU = CPU used so far + the task's ``cpu`` (SIGXCPU → an exception); soft
  limits move freely under the hard ones and are restored after the task;
* program tasks: the source's top level is executed ONCE per worker and cached by SHA-256,
  like a module import, then ``namespace[function](*args, **kwargs)``; the result must
  be JSON (``allow_nan=False``);
* payload tasks: ``cloudpickle.loads(payload)`` → ``(fn, args, kwargs)``, result pickled;
  the callable of a ``Client.map`` batch is rebuilt once per worker and reused, like a
  program's top level (``peeros.task.callable_from``).

After each task, processes the task left behind are killed (``kill(-1, SIGKILL)`` inside
the pid namespace reaches every process of our uid there except us and the namespace
init); threads cannot be killed, so leftover threads make the worker ask to be recycled.
A task after which the namespace's last pid is unchanged created neither: nothing to look
for (``TaskWatch`` in :mod:`peeros.compute.sandbox_lib` says why that is sound).

The messages on the pipe are described in :mod:`peeros.compute.worker_protocol`.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import importlib.util
import io
import itertools
import json
import os
import pickle
import shutil
import signal
import stat
import sys
import tempfile
import threading
import traceback
from collections import OrderedDict, deque
from contextlib import suppress
from types import FrameType
from typing import TYPE_CHECKING, Any


def _load_lib() -> Any:
    """``sandbox_lib.py`` beside this file, loaded by path (this script runs with
    ``python -I``: its own directory is not on ``sys.path``)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sandbox_lib.py")
    spec = importlib.util.spec_from_file_location("_peeros_sandbox_lib", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:
    from peeros.compute.sandbox_lib import Lines, TaskLimits, TaskWatch, cleanup, drop_privileges
else:
    _lib = _load_lib()
    Lines, drop_privileges, cleanup = _lib.Lines, _lib.drop_privileges, _lib.cleanup
    TaskLimits, TaskWatch = _lib.TaskLimits, _lib.TaskWatch


#: Exit status when the sandbox cannot be set up; the pool reports the worker's stderr.
EXIT_SETUP_FAILED = 70
#: How many executed program namespaces a worker keeps (least recently used evicted).
PROGRAM_CACHE_SIZE = 64
#: The worker's scratch space: a private tmpfs under bubblewrap.
TMP = "/tmp"  # noqa: S108


class CpuTimeExceeded(Exception):
    """Raised inside the task when its CPU-seconds budget (soft RLIMIT_CPU) is spent."""


class _State:
    """Process-wide state of this worker."""

    worker_pid = 0
    pidns = False
    in_task = False
    proto_in: Lines | None = None
    proto_out: io.BufferedWriter | None = None
    programs: OrderedDict[str, dict[str, Any]] = OrderedDict()
    #: The working directory the last task left pristine (reused), if any.
    workdir: str | None = None
    #: Its lstat when last seen empty (in the sandbox's tmpfs only, see _release_workdir).
    workdir_key: tuple[int, ...] | None = None
    watch: TaskWatch
    limits: TaskLimits
    #: Task messages that arrived while a system call waited for its answer.
    pending: deque[dict[str, Any]] = deque()


def _parse_args(argv: list[str]) -> dict[str, int]:
    opts = {"uid": 65534, "gid": 65534, "nproc": 256, "nofile": 256, "fsize": 64 << 20}
    opts |= {"max-as": 8 << 30, "pidns": 0}
    it = iter(argv)
    for arg in it:
        key = arg.removeprefix("--")
        if key not in opts:
            raise SystemExit(f"sandbox: unknown option {arg!r}")
        opts[key] = 1 if key == "pidns" else int(next(it))
    return opts


def _take_protocol_fds() -> None:
    """Keep private, non-inheritable copies of stdin/stdout for the protocol."""
    fd_in, fd_out = os.dup(0), os.dup(1)  # PEP 446: dup() fds are not inherited by exec
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    _State.proto_in = Lines(fd_in)
    _State.proto_out = io.BufferedWriter(io.FileIO(fd_out, "wb"), 1 << 16)
    os.register_at_fork(after_in_child=_forget_protocol)


def _forget_protocol() -> None:
    """A process the task forked must never speak the protocol."""
    if _State.proto_in is not None:
        with suppress(OSError):
            os.close(_State.proto_in.fd)
    if _State.proto_out is not None:
        _State.proto_out.raw.close()  # the fd only: never flush the parent's buffer
    _State.proto_in = _State.proto_out = None


def _on_sigxcpu(signum: int, frame: FrameType | None) -> None:
    if _State.in_task:
        raise CpuTimeExceeded("CPU time limit of the task exceeded")


def _program_namespace(program: str) -> dict[str, Any]:
    """Execute a program's top level once per worker (like an import) and cache it."""
    key = hashlib.sha256(program.encode()).hexdigest()
    namespace = _State.programs.get(key)
    if namespace is None:
        namespace = {"__name__": "__task__", "__builtins__": builtins}
        exec(compile(program, "<task>", "exec"), namespace)  # noqa: S102 - the point
        _State.programs[key] = namespace
        while len(_State.programs) > PROGRAM_CACHE_SIZE:
            _State.programs.popitem(last=False)
    _State.programs.move_to_end(key)
    return namespace


_SCALARS = (int, float, str, bytes, bool, type(None))
#: ``json.dumps(x, allow_nan=False)`` builds this encoder anew on every call.
_JSON = json.JSONEncoder(allow_nan=False)


def _call(msg: dict[str, Any]) -> dict[str, Any]:
    """Run one task under its limits; returns the reply fields that describe the result."""
    if msg.get("payload") is not None:
        import cloudpickle

        fn, args, kwargs = cloudpickle.loads(base64.b64decode(msg["payload"]))
        result = fn(*args, **kwargs)
        # A scalar needs no cloudpickle (whose pickler costs more than the task).
        data = pickle.dumps(result, 5) if type(result) in _SCALARS else cloudpickle.dumps(result)
        return {"payload": base64.b64encode(data).decode()}
    namespace = _program_namespace(msg["program"])
    fn = namespace.get(msg["function"])
    if fn is None:
        raise NameError(f"the program defines no function {msg['function']!r}")
    result = fn(*msg["args"], **msg["kwargs"])
    try:
        text = _JSON.encode(result)
    except Exception as exc:
        return {"error": f"result is not JSON serialisable: {_one_line(exc)}"}
    return {"result_json": text}


def _one_line(exc: BaseException) -> str:
    lines = traceback.format_exception_only(type(exc), exc)
    return " ".join(lines[-1].split()) if lines else type(exc).__name__


def _remote_traceback(exc: BaseException) -> str:
    """The traceback without this module's own frames at the top."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _workdir(number: int) -> str:
    """The task's private working directory: new, or the last one if the task before
    left it exactly as it found it (empty, mode 0700) — nothing of it can be seen."""
    if _State.workdir is not None:
        return _State.workdir
    if _State.pidns:
        workdir = f"{TMP}/task-{number}"
        os.mkdir(workdir, 0o700)
    else:
        workdir = tempfile.mkdtemp(prefix=f"task-{number}-")
    _State.workdir = workdir
    return workdir


def _release_workdir(workdir: str) -> None:
    """Keep the directory for the next task if it is pristine (we may stay in it meanwhile).

    In the sandbox, /tmp is a tmpfs, whose directories count their entries in their size:
    a directory whose lstat (inode, mode, links, size, times) is that of the moment it was
    last seen empty is still empty, without listing it (elsewhere the size may not change
    and timestamps may be too coarse to tell, so the directory is listed every time)."""
    with suppress(OSError):
        st = os.lstat(workdir)
        key = (st.st_ino, st.st_mode, st.st_nlink, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if key == _State.workdir_key:
            return
        mode = st.st_mode
        if stat.S_ISDIR(mode) and stat.S_IMODE(mode) == 0o700 and not os.listdir(workdir):
            _State.workdir_key = key if _State.pidns else None
            return
    _State.workdir = _State.workdir_key = None
    os.chdir(TMP)
    shutil.rmtree(workdir, ignore_errors=True)


def _release_current_workdir() -> None:
    if _State.workdir is not None:
        _release_workdir(_State.workdir)


def run_task(msg: dict[str, Any], number: int) -> dict[str, Any]:
    """Run one task in a private working directory; always returns a reply."""
    workdir = _workdir(number)
    os.chdir(workdir)
    reply: dict[str, Any] = {"id": msg.get("id"), "status": "ok"}
    watch, limits = _State.watch, _State.limits
    cpu_used = watch.begin()
    try:
        # Soft limits under the worker's hard ones: the address space now + the task's
        # memory; the CPU used so far + the task's CPU seconds (SIGXCPU when spent).
        memory, cpu = int(msg["memory"]), float(msg["cpu"])
        limits.enter(watch.address_space() + memory, int(cpu_used + cpu) + 1)
        _State.in_task = True
        try:
            reply |= _call(msg)
        finally:
            _State.in_task = False
            limits.restore()
    except BaseException as exc:  # SystemExit, MemoryError, ... are the task's errors too
        reply["traceback"] = _remote_traceback(exc)
        reply["error"] = _one_line(exc)
    finally:
        if os.getpid() != _State.worker_pid:
            os._exit(0)  # a process the task forked came back here: it must not go on
    if "error" in reply:
        reply["status"] = "error"
    reply["cpu"], reply["wall"], quiet = watch.end()
    for stream in (sys.stdout, sys.stderr):
        with suppress(Exception):  # the task may have closed or replaced them
            stream.flush()
    if quiet:  # it started no process and no thread (TaskWatch)
        reply["note"] = reply["recycle"] = None
    else:
        reply["note"], reply["recycle"] = cleanup(_State.pidns, _State.worker_pid)
        watch.after_cleanup()
    # The working directory is released by the caller after the clean-up (nothing left can
    # write into it) and after the reply is sent (the peer goes on meanwhile).
    return reply


class SyscallError(Exception):
    """A system call the peer refused or that failed; the message says why."""


_syscall_lock = threading.Lock()
_syscall_seq = itertools.count(1)


def peeros_syscall(op: str, args: dict[str, Any]) -> Any:
    """Ask the peer to do something for the running task (``peeros.task`` calls this).

    The request and its answer travel on the worker's own pipe, the only channel out of
    the sandbox. Only the task's own process may call (a forked child has no pipe), and
    only while a task runs. Blocking calls (a semaphore wait, a child's result) block
    here; meanwhile the peer counts the task as WAITING and gives its CPU slot away.
    """
    if not _State.in_task or os.getpid() != _State.worker_pid or _State.proto_out is None:
        raise SyscallError("peeros.task calls are only possible from a running task's process")
    assert _State.proto_in is not None
    with _syscall_lock:
        seq = next(_syscall_seq)
        line = _JSON.encode({"syscall": op, "args": args, "seq": seq})
        _State.proto_out.write(line.encode() + b"\n")
        _State.proto_out.flush()
        while True:  # tasks queued behind this one may arrive first: keep them for later
            answer = _State.proto_in.readline()
            if not answer:
                raise SyscallError("the peer closed the channel")
            reply = json.loads(answer)
            if "sysret" in reply:
                if reply["sysret"] == seq:
                    break
                continue  # the late answer of a call cut short (e.g. by SIGXCPU)
            if "revoke" in reply:
                _revoke(_State.proto_out, reply)
            else:
                _State.pending.append(reply)
    if reply.get("sysret") != seq:
        raise SyscallError(f"unexpected answer to system call {op!r}")
    if reply.get("error") is not None:
        raise SyscallError(reply["error"])
    return reply.get("result")


def _serve() -> int:
    assert _State.proto_in is not None and _State.proto_out is not None
    proto_in, proto_out = _State.proto_in, _State.proto_out
    _send(proto_out, {"ready": True, "pid": os.getpid(), "uid": os.getuid()})
    import cloudpickle  # noqa: F401 - ~25 ms: loaded while the pool already counts us ready

    number = 0
    while True:
        if _State.pending:
            msg = _State.pending.popleft()
        else:
            line = proto_in.readline()
            if not line:
                return 0
            msg = json.loads(line)
            if "revoke" in msg:  # for a task that already ran
                _revoke(proto_out, msg)
                continue
            if "sysret" in msg:  # the late answer of a system call cut short
                continue
        number += 1
        reply = run_task(msg, number)
        while (waiting := proto_in.available()) is not None:  # revokes before the reply
            more = json.loads(waiting)
            if "revoke" in more:
                _revoke(proto_out, more)
            elif "sysret" not in more:  # (a late answer of a call cut short: dropped)
                _State.pending.append(more)
        # After the reply (the peer goes on meanwhile), unless the worker may be killed as
        # soon as the peer reads it (recycled; or killed for a task revoked too late, when
        # no pid namespace takes the directory with it): then before.
        early = bool(reply.get("recycle")) or not _State.pidns
        if early:
            _release_current_workdir()
        _send(proto_out, reply)
        if not early:
            _release_current_workdir()
        if reply.get("recycle"):
            return 0  # run nothing more: the peer replaces this worker


def _revoke(out: io.BufferedWriter, msg: dict[str, Any]) -> None:
    """Hand a queued task back unrun, if it has not started (``ok`` says whether)."""
    task_id = msg.get("revoke")
    found = next((m for m in _State.pending if m.get("id") == task_id), None)
    if found is not None:
        _State.pending.remove(found)
    _send(out, {"revoked": task_id, "ok": found is not None})


def _send(out: io.BufferedWriter, reply: dict[str, Any]) -> None:
    text = reply.pop("result_json", None)
    data = _JSON.encode(reply)
    if text is not None:  # splice the already-validated result in: no second encoding
        data = data[:-1] + ', "result": ' + text + "}"
    out.write(data.encode() + b"\n")
    out.flush()


def main(argv: list[str] | None = None) -> int:
    """Set up the sandbox, then serve tasks until stdin closes."""
    opts = _parse_args(sys.argv[1:] if argv is None else argv)
    _State.worker_pid = os.getpid()
    _State.pidns = bool(opts["pidns"])
    try:
        _take_protocol_fds()
        if not _State.pidns:  # unsandboxed: the interpreter may be unreadable as uid 65534
            import cloudpickle  # noqa: F401
        drop_privileges(opts)
        _State.watch, _State.limits = TaskWatch(_State.pidns), TaskLimits()
    except (OSError, ValueError) as exc:
        print(f"sandbox: setup failed: {exc}", file=sys.stderr)
        return EXIT_SETUP_FAILED
    signal.signal(signal.SIGXCPU, _on_sigxcpu)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.chdir(TMP)
    return _serve()


if __name__ == "__main__":
    sys.exit(main())
