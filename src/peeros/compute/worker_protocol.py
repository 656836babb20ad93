"""What the peer and a task worker exchange: the task types and their wire encoding.

:class:`TaskSpec` goes out as one JSON line (a cloudpickle payload as base64: it is only
ever unpickled inside the sandbox); a reply line comes back and becomes a
:class:`TaskOutcome`. The worker's side of the wire is :mod:`peeros.compute.sandbox`,
which imports nothing from PeerOS (it runs as a plain script, see ``workers.py``). A reply
is untrusted input — task code can write to the worker's pipes — so anything malformed is
a :class:`ProtocolError` and the worker is discarded.

Messages (one JSON object per line):
``{"ready": true, "pid": ..., "uid": ...}`` once, then per task the request
``{"id", "program", "function", "args", "kwargs", "payload" (base64), "memory", "cpu"}``
and the reply ``{"id", "status": "ok"|"error", "result" | "payload" | "error" +
"traceback", "cpu", "wall", "recycle": str|null, "note": str|null}``. The peer may send
the next tasks before a reply (they wait in the pipe, run in order); ``{"revoke": id}``
takes back one that has not started, answered by ``{"revoked": id, "ok": bool}``. After
a reply with ``recycle`` the worker runs nothing more and exits.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from peeros.errors import BadRequest, PeerOSError, Unavailable


class ProtocolError(Exception):
    """The worker sent something that is not a valid protocol message."""


class SandboxError(PeerOSError):
    """A worker could not be started, or the requested sandbox is unusable."""


class PoolClosed(Unavailable):
    """The worker pool is closed (the peer is shutting down)."""


@dataclass(frozen=True)
class SandboxConfig:
    """How workers are confined. ``/tmp`` inside the sandbox holds 4 x ``fsize_bytes``."""

    use_bwrap: bool | None = None  # None = auto-detect
    uid: int = 65534
    gid: int = 65534
    nproc: int = 256  # RLIMIT_NPROC counts every process of the uid, across workers
    nofile: int = 256
    fsize_bytes: int = 64 << 20
    default_memory_bytes: int = 1 << 30  # per task, when TaskSpec.memory_bytes is None
    max_memory_bytes: int = 8 << 30  # hard RLIMIT_AS cap of a worker
    hidden_paths: tuple[Path, ...] = ()
    python: str = sys.executable


@dataclass(frozen=True)
class TaskSpec:
    """One task: a program + function + JSON args, or a cloudpickled ``(fn, args, kwargs)``."""

    task_id: str
    owner: str  # submitting peer id; workers never mix owners
    program: str | None = None
    function: str | None = None
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    payload: bytes | None = None  # cloudpickle((fn, args, kwargs)); unpickled only in the sandbox
    memory_bytes: int | None = None
    cpu_seconds: float = 3600.0  # RLIMIT_CPU headroom; wall-clock timeouts are the scheduler's


@dataclass(frozen=True)
class TaskOutcome:
    """How a task ended. ``error`` is one line; ``traceback`` is the remote one."""

    status: Literal["ok", "error", "crashed", "killed"]
    result: Any = None  # JSON value (program tasks)
    result_payload: bytes | None = None  # cloudpickle of the result (payload tasks)
    error: str | None = None
    traceback: str | None = None
    cpu_time: float = 0.0  # CPU seconds the task used
    wall_time: float = 0.0
    #: False: the task was queued on a worker and never started (revoked, or the worker
    #: died first); the scheduler runs it again.
    started: bool = True


#: ``json.dumps(x, allow_nan=False)`` would build this encoder anew for every task.
_ENCODER = json.JSONEncoder(allow_nan=False)


def encode_task(spec: TaskSpec, config: SandboxConfig) -> bytes:
    """The task message; validated here so a bad task never reaches a worker."""
    if (spec.payload is None) == (spec.program is None):
        raise BadRequest("a task needs either a program and a function, or a payload")
    if spec.program is not None and not spec.function:
        raise BadRequest("a program task needs the name of the function to call")
    memory = config.default_memory_bytes if spec.memory_bytes is None else spec.memory_bytes
    if memory <= 0 or spec.cpu_seconds <= 0:
        raise BadRequest("memory_bytes and cpu_seconds must be positive")
    msg = {
        "id": spec.task_id,
        "program": spec.program,
        "function": spec.function,
        "args": spec.args,
        "kwargs": spec.kwargs,
        "payload": None if spec.payload is None else base64.b64encode(spec.payload).decode(),
        "memory": min(memory, config.max_memory_bytes),
        "cpu": spec.cpu_seconds,
    }
    try:
        return _ENCODER.encode(msg).encode() + b"\n"
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"task args are not JSON serialisable: {exc}") from None


def decode_outcome(msg: dict[str, Any]) -> TaskOutcome:
    """A reply message as an outcome; anything malformed is a protocol error."""
    try:
        payload = msg.get("payload")
        error, tb = msg.get("error"), msg.get("traceback")
        if not (error is None or isinstance(error, str)) or not (tb is None or isinstance(tb, str)):
            raise TypeError("error and traceback must be strings")
        return TaskOutcome(
            status="ok" if msg.get("status") == "ok" and error is None else "error",
            result=msg.get("result"),
            result_payload=None if payload is None else base64.b64decode(payload, validate=True),
            error=error,
            traceback=tb,
            cpu_time=float(msg.get("cpu", 0.0)),
            wall_time=float(msg.get("wall", 0.0)),
        )
    except (TypeError, ValueError, binascii.Error) as exc:
        raise ProtocolError(f"malformed reply: {exc}") from None
