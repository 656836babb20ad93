"""``peeros.Client``: the one client of a peer's local API, used by the CLI, the
dashboard and user code alike.

:class:`AsyncClient` does the work on aiohttp. :class:`Client` is its synchronous face:
it runs an event loop in a private thread (as Dask's client does), so it is safe to use
from plain scripts, notebooks and threads. Its task and status calls skip that thread:
they go from the caller's thread over kept-alive connections
(:mod:`peeros.client_http`), with the same requests, replies and errors.

Finding the peer: an explicit URL and token, else a data directory (the running peer
wrote ``api.json`` and ``api.token`` there; a ``peeros up`` cluster directory works too),
else ``$PEEROS_DATA_DIR``, else ``~/.peeros``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from peeros.client_async import LANE_MAX_BODY, LANE_MAX_TASKS, SUBMIT_WAIT, AsyncClient, Call
from peeros.client_endpoint import Endpoint
from peeros.client_files import Files
from peeros.client_http import BlockingHTTP
from peeros.client_ipc import Ipc
from peeros.client_kernel import Kernel
from peeros.client_lane import BlockingLane, NoLane
from peeros.client_memory import Memory
from peeros.client_owned import Owned
from peeros.files.spares import SPARES
from peeros.net.client import M, parse_json
from peeros.protocol import (
    CancelResponse,
    HistoryResponse,
    PeerInfo,
    PeerList,
    PeerStatus,
    SchedState,
    Submitted,
    TaskRequest,
    TaskResult,
    WaitResponse,
)
from peeros.taskcodec import decode_result, encode_call

__all__ = ["AsyncClient", "Client", "connect"]

T = TypeVar("T")


class Client:
    """Synchronous client: the same operations as :class:`AsyncClient`, blocking."""

    def __init__(
        self,
        peer: str | None = None,
        token: str | None = None,
        data_dir: str | Path | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._async = AsyncClient(peer, token, data_dir, timeout)
        #: Task and status calls go straight from the caller's thread (no loop hop).
        self._http = BlockingHTTP(self.endpoint.url, self.endpoint.token, timeout)
        #: Task submissions that wait for their results go over the local lane.
        self._lane = BlockingLane(self._http)
        self._executor: Any = None
        #: The peer's key-value store as a mapping: ``client.memory["k"] = v``.
        self.memory = Memory(self._async.memory, self._run)
        #: Semaphores and queues: ``client.ipc.send("q", msg)``, ``.on(peer).sem_wait(...)``.
        self.ipc = Ipc(self._async.ipc, self._run)
        self.kernel = Kernel(self._async.kernel, self._run)
        #: Files on the peer: ``client.files.put("name", path)``, ``.on(peer).get(...)``.
        self.files = Files(self._async.files, self._run, self._http)
        #: Owned files: ``client.owned.upload(path)``, ``.download(name, save)``.
        self.owned = Owned(self._async.owned, self._run)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="peeros-client", daemon=True
        )
        self._thread.start()

    @property
    def endpoint(self) -> Endpoint:
        return self._async.endpoint

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self._thread:
            raise RuntimeError("a blocking Client call from its own event loop thread")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _call(self, cls: type[M], call: Call) -> M:
        """One JSON request on the caller's thread, parsed as ``cls``."""
        return self._http.request_model(cls, *call)

    def status(self) -> PeerStatus:
        return self._call(PeerStatus, ("GET", "/v1/status", None, None))

    def peers(self) -> list[PeerInfo]:
        return self._call(PeerList, ("GET", "/v1/peers", None, None)).peers

    def submit_requests(self, requests: list[TaskRequest]) -> list[str]:
        return self._call(Submitted, self._async._submit_call(requests, 0.0)).task_ids

    def run(self, requests: list[TaskRequest]) -> list[TaskResult]:
        """Submit and wait for every result, in one round trip when the tasks are quick."""
        submitted = self._submit_and_wait(requests, SUBMIT_WAIT)
        if submitted.results:
            return submitted.results
        return self.results(submitted.task_ids)

    def _submit_and_wait(self, requests: list[TaskRequest], wait: float) -> Submitted:
        """Over the lane (:mod:`peeros.client_lane`) when the peer has one and the
        tasks are small; else over HTTP, whose 413 names a body that is too large."""
        if not self._lane.missing and len(requests) <= LANE_MAX_TASKS:
            tasks = [r.model_dump(mode="json", exclude_defaults=True) for r in requests]
            body = json.dumps({"wait": wait, "tasks": tasks}).encode()
            if len(body) <= LANE_MAX_BODY:
                try:
                    raw = self._lane.call("submit", body, self._async._submit_timeout(wait))
                except NoLane:
                    pass
                else:
                    return parse_json(Submitted, raw, self.endpoint.url)
        return self._call(Submitted, self._async._submit_call(requests, wait))

    def wait(self, task_ids: list[str], timeout: float = 30.0, all: bool = False) -> WaitResponse:
        return self._call(WaitResponse, self._async._wait_call(task_ids, timeout, all))

    def results(self, task_ids: list[str]) -> list[TaskResult]:
        done: dict[str, TaskResult] = {}
        pending = list(task_ids)
        while pending:
            got = self.wait(pending, timeout=30.0, all=True)
            done.update((r.task_id, r) for r in got.done)
            pending = got.pending
        return [done[t] for t in task_ids]

    def task(self, task_id: str) -> TaskResult:
        return self._call(TaskResult, ("GET", f"/v1/tasks/{task_id}", None, None))

    def run_program(
        self, program: str, function: str, args: list[Any] | None = None, **options: Any
    ) -> TaskResult:
        req = TaskRequest(program=program, function=function, args=list(args or []), **options)
        (result,) = self.run([req])
        return result

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        (result,) = self.run([encode_call(fn, args, kwargs)])
        return decode_result(result)

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Like Dask's ``Client.submit``: a :class:`concurrent.futures.Future`.

        Keyword arguments named like task options (``priority``, ``timeout``,
        ``max_retries``, ``confidential``, ``elsewhere``, ``memory_mb``, ``cache``,
        ``expected_time``)
        configure the task; the others are passed to ``fn``.
        """
        return self.executor().submit(fn, *args, **kwargs)

    def map(self, fn: Any, *iterables: Any, **options: Any) -> list[Any]:
        return self._run(self._async.map(fn, *iterables, **options))

    def cancel(self, task_id: str) -> CancelResponse:
        return self._call(CancelResponse, ("POST", f"/v1/tasks/{task_id}/cancel", None, None))

    def history(self, limit: int = 20) -> HistoryResponse:
        return self._run(self._async.history(limit))

    def sched(self) -> SchedState:
        return self._run(self._async.sched())

    def set_sched(
        self, policy: str, quantum_ms: float | None = None, aging: float | None = None
    ) -> SchedState:
        return self._run(self._async.set_sched(policy, quantum_ms, aging))

    def simulate(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self._run(self._async.simulate(spec))

    def executor(self) -> Any:
        """The :class:`peeros.Executor` bound to this client (created on first use)."""
        if self._executor is None:
            from peeros.executor import Executor

            self._executor = Executor(client=self)
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._http.close()
        self._lane.close()
        SPARES.close()  # files made ahead for downloads (unnamed: they vanish)
        if self._loop.is_running():
            self._run(self._async.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(
    peer: str | None = None, token: str | None = None, data_dir: str | Path | None = None
) -> Client:
    """Connect to a peer's local API (see the module docstring for how it is found)."""
    return Client(peer, token, data_dir)
