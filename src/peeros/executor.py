"""``peeros.Executor``: the standard :class:`concurrent.futures.Executor` over a cluster.

``submit`` returns real :class:`concurrent.futures.Future` objects, so ``as_completed``,
``wait`` and ``Executor.map`` work unchanged. One collector thread long-polls the peer
(``/v1/tasks/wait``) for whichever pending tasks finish first and resolves their futures.
Cancelling a future cancels the task on the cluster.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from peeros.client import Client
from peeros.errors import PeerOSError
from peeros.taskcodec import TaskError, decode_result, encode_call, split_options

T = TypeVar("T")
POLL_SECONDS = 1.0


class TaskFuture(cf.Future[Any]):
    """A Future whose ``cancel()`` also cancels the task on the cluster."""

    def __init__(self, executor: Executor, task_id: str) -> None:
        super().__init__()
        self.task_id = task_id
        self._executor = executor

    def cancel(self) -> bool:
        # Futures stay PENDING until their result arrives, so the standard cancel works;
        # set_running_or_notify_cancel() then wakes as_completed() and wait().
        if not super().cancel():
            return False
        self.set_running_or_notify_cancel()
        self._executor._forget(self.task_id)
        with contextlib.suppress(PeerOSError):
            self._executor._client.cancel(self.task_id)
        return True


class Executor(cf.Executor):
    """Run callables on a PeerOS cluster through one peer's local API."""

    def __init__(self, client: Client | None = None, **connect: Any) -> None:
        self._own_client = client is None
        self._client = client or Client(**connect)
        self._pending: dict[str, TaskFuture] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._shutdown = False
        self._thread = threading.Thread(target=self._collect, name="peeros-executor", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> cf.Future[T]:
        if self._shutdown:
            raise RuntimeError("cannot submit after shutdown")
        options, fn_kwargs = split_options(kwargs)
        (task_id,) = self._client.submit_requests([encode_call(fn, args, fn_kwargs, options)])
        future = TaskFuture(self, task_id)
        with self._lock:
            self._pending[task_id] = future
        self._wake.set()
        return future

    def _forget(self, task_id: str) -> None:
        with self._lock:
            self._pending.pop(task_id, None)

    def _collect(self) -> None:
        while True:
            with self._lock:
                ids = list(self._pending)
            if not ids:
                if self._shutdown:
                    return
                self._wake.wait(POLL_SECONDS)
                self._wake.clear()
                continue
            try:
                got = self._client.wait(ids, timeout=POLL_SECONDS)
            except PeerOSError as exc:
                with self._lock:
                    failed = list(self._pending.values())
                    self._pending.clear()
                for f in failed:
                    if not f.done():
                        f.set_exception(exc)
                continue
            except RuntimeError:  # the client was closed under us
                return
            for result in got.done:
                with self._lock:
                    future = self._pending.pop(result.task_id, None)
                if future is None or future.done():
                    continue
                try:
                    future.set_result(decode_result(result))
                except TaskError as exc:
                    future.set_exception(exc)
                except Exception as exc:  # a result that cannot be unpickled here
                    future.set_exception(exc)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shutdown = True
        if cancel_futures:
            with self._lock:
                futures = list(self._pending.values())
            for f in futures:
                f.cancel()
        self._wake.set()
        if wait:
            self._thread.join()
        if self._own_client:
            self._client.close()
