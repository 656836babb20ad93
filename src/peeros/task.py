"""``peeros.task``: what a running task can ask of PeerOS — its system calls.

Import it inside task code (``from peeros import task``). Each call travels on the
sandboxed worker's pipe to the peer that runs the task (there is no network in the
sandbox); calls that wait (a semaphore, a queue, a child's result, a resource grant)
make the task WAITING: it gives its CPU slot away until it is woken and scheduled again.

Deliberately tiny: it imports nothing heavy, so it costs nothing inside a worker.

::

    from peeros import task

    def main(n):
        kids = [task.spawn_program(CHILD, "main", [i]) for i in range(n)]  # on any peer
        return sum(task.wait(k) for k in kids)
"""

from __future__ import annotations

import base64
import hashlib
import pickle
import sys
from collections import OrderedDict
from typing import Any

#: Callables of ``Client.map`` batches already rebuilt in this worker (least recent out).
_CALLABLES: OrderedDict[bytes, Any] = OrderedDict()
_CALLABLES_KEPT = 32


class SyscallError(RuntimeError):
    """A system call was refused or failed."""


def _call(op: str, **args: Any) -> Any:
    main = sys.modules.get("__main__")
    syscall = getattr(main, "peeros_syscall", None)
    if syscall is None:
        raise SyscallError("peeros.task works only inside a task running on a PeerOS peer")
    try:
        return syscall(op, {k: v for k, v in args.items() if v is not None})
    except Exception as exc:
        if type(exc).__name__ == "SyscallError":
            raise SyscallError(str(exc)) from None
        raise


def callable_from(data: bytes) -> Any:
    """Rebuild the callable of a ``Client.map`` batch (``taskcodec.PickledOnce``): every
    task of the batch carries the same pickled bytes, so a worker unpickles them once.

    Runs only inside a sandboxed worker (which serves one owner), as part of unpickling a
    task's payload."""
    key = hashlib.sha256(data).digest()
    fn = _CALLABLES.get(key)
    if fn is None:
        fn = pickle.loads(data)  # noqa: S301 - inside the sandbox: that is the point
        _CALLABLES[key] = fn
        while len(_CALLABLES) > _CALLABLES_KEPT:
            _CALLABLES.popitem(last=False)
    _CALLABLES.move_to_end(key)
    return fn


# --- identity ---------------------------------------------------------------------------


def info() -> dict[str, Any]:
    """This task's pid (its task id), its parent, group and the peer running it."""
    result: dict[str, Any] = _call("info")
    return result


# --- children ---------------------------------------------------------------------------


def spawn_program(
    program: str,
    function: str,
    args: list[Any] | None = None,
    on: str | None = None,
    **options: Any,
) -> str:
    """Start a child task (on ``on``, a peer id or HOST:PORT, else where placement says);
    returns its pid. Options are those of ``peeros cpu`` (priority, timeout, ...)."""
    pid: str = _call(
        "spawn", program=program, function=function, args=list(args or []), on=on, options=options
    )
    return pid


def spawn(fn: Any, *args: Any, on: str | None = None, **options: Any) -> str:
    """Start a child task running ``fn(*args)`` (pickled with cloudpickle)."""
    import cloudpickle

    payload = base64.b64encode(cloudpickle.dumps((fn, args, {}))).decode()
    pid: str = _call(
        "spawn", payload=payload, function=getattr(fn, "__name__", None), on=on, options=options
    )
    return pid


def wait(pid: str, timeout: float | None = None) -> Any:
    """Wait for a child to end and collect it (reaping the zombie); return its value, or
    raise :class:`SyscallError` with its error."""
    result = _call("wait", pid=pid, timeout=timeout)
    if result.get("payload") is not None:
        import cloudpickle

        return cloudpickle.loads(base64.b64decode(result["payload"]))
    return result.get("value")


# --- IPC ----------------------------------------------------------------------------------


def sem_create(name: str, value: int = 1, binary: bool = False, on: str | None = None) -> None:
    _call("sem-create", name=name, value=value, binary=binary, on=on)


def sem_wait(name: str, timeout: float | None = None, on: str | None = None) -> None:
    _call("sem-wait", name=name, timeout=timeout, on=on)


def sem_signal(name: str, on: str | None = None) -> None:
    _call("sem-signal", name=name, on=on)


def queue_create(name: str, capacity: int = 16, on: str | None = None) -> None:
    _call("queue-create", name=name, capacity=capacity, on=on)


def send(queue: str, message: Any, timeout: float | None = None, on: str | None = None) -> None:
    _call("send", name=queue, message=message, timeout=timeout, on=on)


def recv(queue: str, timeout: float | None = None, on: str | None = None) -> Any:
    return _call("recv", name=queue, timeout=timeout, on=on)


# --- resources (Banker's algorithm) ---------------------------------------------------


def request(resources: dict[str, int]) -> None:
    """Ask for more resources, within the task's declared maximum claim; waits until the
    grant keeps the system safe (Banker's algorithm)."""
    _call("request", resources=resources)


def release(resources: dict[str, int]) -> None:
    _call("release", resources=resources)
