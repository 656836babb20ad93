"""Turning Python callables into tasks and task results back into values (client side).

A callable travels as ``base64(cloudpickle((fn, args, kwargs)))`` and is unpickled only
inside a sandboxed worker; peers' server processes never unpickle anything. The result of
a callable comes back pickled the same way and is unpickled here, by the submitter.
"""

from __future__ import annotations

import base64
import pickle
from collections.abc import Iterable
from typing import Any

import cloudpickle

from peeros.errors import PeerOSError
from peeros.protocol import TaskOptions, TaskRequest, TaskResult

#: Keyword arguments of ``Client.submit`` that configure the task instead of reaching ``fn``.
OPTION_NAMES = frozenset(TaskOptions.model_fields)


class TaskError(PeerOSError):
    """A task ended without a value (FAILED, TIMED_OUT or CANCELLED).

    ``result`` holds the whole :class:`~peeros.protocol.TaskResult`, including the remote
    ``traceback``.
    """

    def __init__(self, result: TaskResult) -> None:
        message = f"task {result.task_id} {result.status}"
        if result.error:
            message += f": {result.error}"
        super().__init__(message)
        self.result = result

    @property
    def traceback(self) -> str | None:
        return self.result.traceback


def split_options(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate task options from the callable's own keyword arguments."""
    options = {k: v for k, v in kwargs.items() if k in OPTION_NAMES}
    rest = {k: v for k, v in kwargs.items() if k not in OPTION_NAMES}
    return options, rest


def encode_call(
    fn: Any,
    args: tuple[Any, ...] | list[Any],
    kwargs: dict[str, Any],
    options: dict[str, Any] | None = None,
) -> TaskRequest:
    if not callable(fn):
        raise TypeError(f"expected a callable, got {type(fn).__name__}")
    payload = base64.b64encode(cloudpickle.dumps((fn, tuple(args), kwargs))).decode()
    return TaskRequest(payload=payload, function=getattr(fn, "__name__", None), **(options or {}))


class PickledOnce:
    """A callable pickled once for a whole ``map``: each task's payload carries these
    bytes, and unpickling the payload (inside the sandbox) rebuilds the callable with
    :func:`peeros.task.callable_from` — so a batch costs one cloudpickle of the function,
    not one per task, and a worker unpickles it once, not once per task."""

    __slots__ = ("data",)

    def __init__(self, fn: Any) -> None:
        self.data = cloudpickle.dumps(fn)

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        from peeros.task import callable_from

        return (callable_from, (self.data,))


_PLAIN = (int, float, str, bytes, bool, type(None))


def _plain(value: Any, depth: int = 0) -> bool:
    """Plain data that the standard pickle sends by value (no code, no classes)."""
    if type(value) in _PLAIN:
        return True
    if depth < 8 and type(value) in (list, tuple):
        return all(_plain(v, depth + 1) for v in value)
    if depth < 8 and type(value) is dict:
        return all(_plain(k, depth + 1) and _plain(v, depth + 1) for k, v in value.items())
    return False


def encode_map(
    fn: Any, arg_tuples: Iterable[tuple[Any, ...]], options: dict[str, Any] | None = None
) -> list[TaskRequest]:
    """One task per tuple of arguments, the callable pickled once for them all."""
    if not callable(fn):
        raise TypeError(f"expected a callable, got {type(fn).__name__}")
    once = PickledOnce(fn)
    name = getattr(fn, "__name__", None)
    opts = options or {}
    requests = []
    for args in arg_tuples:
        call: tuple[Any, tuple[Any, ...], dict[str, Any]] = (once, tuple(args), {})
        data = pickle.dumps(call, 5) if _plain(call[1]) else cloudpickle.dumps(call)
        payload = base64.b64encode(data).decode()
        requests.append(TaskRequest(payload=payload, function=name, **opts))
    return requests


def decode_result(result: TaskResult) -> Any:
    """The value a task returned, or :class:`TaskError`."""
    if result.status != "DONE":
        raise TaskError(result)
    if result.result_payload is not None:
        return cloudpickle.loads(base64.b64decode(result.result_payload))
    return result.result
