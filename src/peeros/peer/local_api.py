"""The peer's user-plane API (127.0.0.1, bearer token): what Client, CLI and dashboard use."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, TypeVar

from aiohttp import web

from peeros.errors import BadRequest
from peeros.kernel.scheduling import SchedulingError
from peeros.kernel.scheduling_sim import simulate
from peeros.net.link_server import LANE_PATH, Later, LinkServer
from peeros.net.server import json_response, read_model
from peeros.protocol import (
    BatchRequest,
    LaneSubmit,
    SchedPolicyRequest,
    SimulateRequest,
    Submitted,
    TaskRequest,
    TaskResult,
    WaitRequest,
)

if TYPE_CHECKING:
    from peeros.peer.node import PeerNode

NODE: web.AppKey[PeerNode] = web.AppKey("node")
N = TypeVar("N", int, float)
_TASK_ID = re.compile(r"^[0-9a-f]{32}$")


def task_id_of(request: web.Request) -> str:
    task_id = request.match_info["task_id"]
    if not _TASK_ID.match(task_id):
        raise BadRequest(f"task id must be 32 hex digits, got {task_id[:40]!r}")
    return task_id


def number_query(request: web.Request, name: str, default: N, low: N, high: N, kind: type[N]) -> N:
    """A numeric query parameter within [low, high]; anything else is a 400 naming it."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError as exc:
        raise BadRequest(
            f"{name} must be a{'n integer' if kind is int else ' number'}, got {raw[:20]!r}"
        ) from exc
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low:g} and {high:g}, got {value:g}")
    return value


async def status(request: web.Request) -> web.Response:
    return json_response(request.app[NODE].status())


async def peers(request: web.Request) -> web.Response:
    return json_response(await request.app[NODE].peers())


def _wait_param(request: web.Request) -> float:
    return number_query(request, "wait", 0.0, 0.0, 60.0, float)


async def submitted(node: PeerNode, ids: list[str], wait: float) -> Submitted:
    """``?wait=S`` answers with the results when all are done within S seconds, saving
    the client a second round trip (the common case for short tasks)."""
    if wait > 0:
        got = await node.tasks.wait(ids, wait, True)
        if not got.pending:
            return Submitted(task_ids=ids, results=got.done)
    return Submitted(task_ids=ids)


async def _submitted(request: web.Request, ids: list[str], wait: float) -> web.Response:
    return json_response(await submitted(request.app[NODE], ids, wait))


def lane_server(node: PeerNode) -> LinkServer:
    """The local lane (``GET /v1/lane``, see :mod:`peeros.client_lane`): ``submit`` is
    ``POST /v1/tasks/batch?wait=S`` as a frame; the bearer token was checked at the
    upgrade."""

    def submit_op(_caller: str, body: str) -> Later:
        req = LaneSubmit.model_validate_json(body)  # queued as the frame is read
        ids = node.tasks.submit(req.tasks)
        later = Later()

        def answer(results: list[TaskResult] | None) -> None:
            # Written where the last task ends: before the origin's work that follows.
            later.give(lambda: Submitted(task_ids=ids, results=results or []))

        node.tasks.when_done(ids, req.wait, answer)
        return later

    return LinkServer({"submit": submit_op}, LANE_PATH, caller=lambda _request: "local")


async def submit(request: web.Request) -> web.Response:
    wait = _wait_param(request)  # before anything is queued
    req = await read_model(request, TaskRequest)
    return await _submitted(request, request.app[NODE].tasks.submit([req]), wait)


async def submit_batch(request: web.Request) -> web.Response:
    wait = _wait_param(request)
    req = await read_model(request, BatchRequest)
    return await _submitted(request, request.app[NODE].tasks.submit(req.tasks), wait)


async def wait(request: web.Request) -> web.Response:
    req = await read_model(request, WaitRequest)
    return json_response(await request.app[NODE].tasks.wait(req.task_ids, req.timeout, req.all))


async def get_task(request: web.Request) -> web.Response:
    return json_response(request.app[NODE].tasks.get(task_id_of(request)))


async def cancel(request: web.Request) -> web.Response:
    return json_response(await request.app[NODE].tasks.cancel(task_id_of(request)))


async def history(request: web.Request) -> web.Response:
    limit = number_query(request, "limit", 20, 1, 10_000, int)
    return json_response(request.app[NODE].history_report(limit))


async def sched_show(request: web.Request) -> web.Response:
    return json_response(request.app[NODE].sched_state())


async def sched_set(request: web.Request) -> web.Response:
    req = await read_model(request, SchedPolicyRequest)
    request.app[NODE].scheduler.set_policy(req.policy, req.quantum_ms, req.aging)
    return json_response(request.app[NODE].sched_state())


async def sched_simulate(request: web.Request) -> web.Response:
    req = await read_model(request, SimulateRequest)
    try:
        return json_response(simulate(req.spec).to_dict())
    except SchedulingError as exc:
        raise BadRequest(str(exc)) from exc


async def memory(request: web.Request) -> web.Response:
    node = request.app[NODE]
    op = request.match_info["op"]
    req = await read_model(request, node.memory.model_for(op))
    return json_response(await node.memory_call(op, req))


async def ipc(request: web.Request) -> web.Response:
    node = request.app[NODE]
    op = request.match_info["op"]
    req = await read_model(request, node.ipc.model_for(op))
    return json_response(await node.ipc_call(op, req))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/status", status)
    app.router.add_get("/v1/peers", peers)
    app.router.add_post("/v1/tasks", submit)
    app.router.add_post("/v1/tasks/batch", submit_batch)
    app.router.add_post("/v1/tasks/wait", wait)
    app.router.add_get("/v1/tasks/{task_id}", get_task)
    app.router.add_post("/v1/tasks/{task_id}/cancel", cancel)
    app.router.add_get("/v1/history", history)
    app.router.add_get("/v1/sched", sched_show)
    app.router.add_post("/v1/sched", sched_set)
    app.router.add_post("/v1/sched/simulate", sched_simulate)
    app.router.add_post("/v1/memory/{op}", memory)
    app.router.add_post("/v1/ipc/{op}", ipc)
