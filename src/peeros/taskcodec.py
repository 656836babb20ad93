"""Turning Python callables into tasks and task results back into values (client side).

A callable travels as ``base64(cloudpickle((fn, args, kwargs)))`` and is unpickled only
inside a sandboxed worker; peers' server processes never unpickle anything. The result of
a callable comes back pickled the same way and is unpickled here, by the submitter.
"""

from __future__ import annotations

import base64
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


def decode_result(result: TaskResult) -> Any:
    """The value a task returned, or :class:`TaskError`."""
    if result.status != "DONE":
        raise TaskError(result)
    if result.result_payload is not None:
        return cloudpickle.loads(base64.b64decode(result.result_payload))
    return result.result
