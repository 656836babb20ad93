"""``peeros.AsyncClient``: the client of a peer's local API on aiohttp (the synchronous
:class:`peeros.Client` runs it in a private thread; see :mod:`peeros.client`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from peeros.client_endpoint import resolve_endpoint
from peeros.client_files import AsyncFiles
from peeros.client_http import encode_body
from peeros.client_ipc import AsyncIpc
from peeros.client_kernel import AsyncKernel
from peeros.client_memory import AsyncMemory
from peeros.client_owned import AsyncOwned
from peeros.errors import PeerOSError, Unavailable
from peeros.net.client import M, json_body, parse, parse_json, raise_for_error
from peeros.protocol import (
    PROTOCOL_HEADER,
    PROTOCOL_VERSION,
    BatchRequest,
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
from peeros.taskcodec import decode_result, encode_call, encode_map

#: A JSON request to the local API: method, path, body, timeout.
Call = tuple[str, str, Any, float | None]
#: How long a submission waits for its results before falling back to polling.
SUBMIT_WAIT = 20.0
#: Submissions up to this size go over the local lane (larger ones over HTTP).
LANE_MAX_BODY = 1 << 20
#: ... and of at most this many tasks (a bigger batch is built once, for HTTP).
LANE_MAX_TASKS = 64
#: HTTP time allowed beyond a long-poll's own timeout.
WAIT_SLACK = 10.0


class AsyncClient:
    """Asynchronous client of one peer's local API."""

    def __init__(
        self,
        peer: str | None = None,
        token: str | None = None,
        data_dir: str | Path | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.endpoint = resolve_endpoint(peer, token, data_dir)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        #: The peer's key-value store (``await client.memory.get("k")``).
        self.memory = AsyncMemory(self)
        #: Semaphores and queues (``await client.ipc.recv("q")``).
        self.ipc = AsyncIpc(self)
        #: Processes, allocator, Banker's state and deadlocks.
        self.kernel = AsyncKernel(self)
        #: Files on the peer (``await client.files.put("name", path)``).
        self.files = AsyncFiles(self)
        #: Owned files, encrypted here and held by other peers (``client.owned.upload``).
        self.owned = AsyncOwned(self)

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                headers={
                    "Authorization": f"Bearer {self.endpoint.token}",
                    PROTOCOL_HEADER: str(PROTOCOL_VERSION),
                },
            )
        return self._session

    async def request(
        self, method: str, path: str, body: Any = None, timeout: float | None = None
    ) -> Any:
        """``timeout``: total seconds for this request (default: the client's)."""
        return await self._request(method, path, body, timeout, None)

    async def request_model(
        self, cls: type[M], method: str, path: str, body: Any = None, timeout: float | None = None
    ) -> M:
        """:meth:`request`, the reply parsed as ``cls`` (:func:`parse_json`: fast)."""
        model: M = await self._request(method, path, body, timeout, cls)
        return model

    async def _request(
        self, method: str, path: str, body: Any, timeout: float | None, cls: type[M] | None
    ) -> Any:
        url = self.endpoint.url + path
        kwargs: dict[str, Any] = {}
        data = encode_body(body)
        if data is not None:
            kwargs.update(json_body(data))
        if timeout is not None:
            kwargs["timeout"] = aiohttp.ClientTimeout(total=timeout)
        try:
            async with self._get_session().request(method, url, **kwargs) as resp:
                await raise_for_error(resp)
                if cls is not None:
                    return parse_json(cls, await resp.read(), self.endpoint.url)
                return await resp.json()
        except PeerOSError:
            raise
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise Unavailable(
                f"cannot reach the peer's local API at {self.endpoint.url}: "
                f"{str(exc) or type(exc).__name__}; is the peer running?"
            ) from exc

    async def status(self) -> PeerStatus:
        return parse(PeerStatus, await self.request("GET", "/v1/status"), self.endpoint.url)

    async def peers(self) -> list[PeerInfo]:
        return parse(PeerList, await self.request("GET", "/v1/peers"), self.endpoint.url).peers

    # --- tasks ---------------------------------------------------------------------------

    async def submit_requests(self, requests: list[TaskRequest]) -> list[str]:
        """Submit tasks; returns their ids at once (nothing is queued if any is invalid)."""
        return (await self._submit(requests, 0.0)).task_ids

    def _submit_timeout(self, wait: float) -> float | None:
        return self._timeout.total + wait if self._timeout.total and wait else None

    def _submit_call(self, requests: list[TaskRequest], wait: float) -> Call:
        """The request that submits ``requests`` and waits up to ``wait`` s for results."""
        query = f"?wait={wait:g}" if wait > 0 else ""
        timeout = self._submit_timeout(wait)
        if len(requests) == 1:
            body = requests[0].model_dump(mode="json", exclude_defaults=True)
            return "POST", "/v1/tasks" + query, body, timeout
        # (defaults left out: a peer of an older version does not know every option)
        batch = BatchRequest(tasks=requests).model_dump_json(exclude_defaults=True).encode()
        return "POST", "/v1/tasks/batch" + query, batch, timeout

    async def _submit(self, requests: list[TaskRequest], wait: float) -> Submitted:
        return await self.request_model(Submitted, *self._submit_call(requests, wait))

    async def run(self, requests: list[TaskRequest]) -> list[TaskResult]:
        """Submit and wait for every result, in one round trip when the tasks are quick."""
        submitted = await self._submit(requests, SUBMIT_WAIT)
        if submitted.results:
            return submitted.results
        return await self.results(submitted.task_ids)

    @staticmethod
    def _wait_call(task_ids: list[str], timeout: float, all: bool) -> Call:
        body = {"task_ids": task_ids, "timeout": timeout, "all": all}
        return "POST", "/v1/tasks/wait", body, timeout + WAIT_SLACK

    async def wait(
        self, task_ids: list[str], timeout: float = 30.0, all: bool = False
    ) -> WaitResponse:
        return await self.request_model(WaitResponse, *self._wait_call(task_ids, timeout, all))

    async def results(self, task_ids: list[str]) -> list[TaskResult]:
        """Wait until every task has its final result; results in the order of ``task_ids``."""
        done: dict[str, TaskResult] = {}
        pending = list(task_ids)
        while pending:
            got = await self.wait(pending, timeout=30.0, all=True)
            done.update((r.task_id, r) for r in got.done)
            pending = got.pending
        return [done[t] for t in task_ids]

    async def task(self, task_id: str) -> TaskResult:
        return parse(
            TaskResult, await self.request("GET", f"/v1/tasks/{task_id}"), self.endpoint.url
        )

    async def run_program(
        self, program: str, function: str, args: list[Any] | None = None, **options: Any
    ) -> TaskResult:
        """Run ``function(*args)`` from ``program`` and wait for its result (never raises
        for a task failure: look at ``status``, ``error`` and ``traceback``)."""
        req = TaskRequest(program=program, function=function, args=list(args or []), **options)
        (result,) = await self.run([req])
        return result

    async def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a callable on the cluster and return its value (raises TaskError on failure)."""
        (result,) = await self.run([encode_call(fn, args, kwargs)])
        return decode_result(result)

    async def map(self, fn: Any, *iterables: Any, **options: Any) -> list[Any]:
        """``[fn(*xs) for xs in zip(*iterables)]`` on the cluster, as one batch."""
        requests = encode_map(fn, zip(*iterables, strict=False), options)
        if not requests:
            return []
        return [decode_result(r) for r in await self.run(requests)]

    async def cancel(self, task_id: str) -> CancelResponse:
        data = await self.request("POST", f"/v1/tasks/{task_id}/cancel")
        return parse(CancelResponse, data, self.endpoint.url)

    async def history(self, limit: int = 20) -> HistoryResponse:
        data = await self.request("GET", f"/v1/history?limit={limit}")
        return parse(HistoryResponse, data, self.endpoint.url)

    async def sched(self) -> SchedState:
        return parse(SchedState, await self.request("GET", "/v1/sched"), self.endpoint.url)

    async def set_sched(
        self, policy: str, quantum_ms: float | None = None, aging: float | None = None
    ) -> SchedState:
        body: dict[str, Any] = {"policy": policy}
        if quantum_ms is not None:
            body["quantum_ms"] = quantum_ms
        if aging is not None:
            body["aging"] = aging
        return parse(SchedState, await self.request("POST", "/v1/sched", body), self.endpoint.url)

    async def simulate(self, spec: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = await self.request("POST", "/v1/sched/simulate", {"spec": spec})
        return data

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
