"""The peer's cluster-plane routes (mutual TLS; the caller is a verified member)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from peeros.net.server import PEER_ID, json_response, read_model
from peeros.peer.local_api import task_id_of
from peeros.protocol import ExecuteRequest, ExecuteResponse

if TYPE_CHECKING:
    from peeros.peer.node import PeerNode

NODE: web.AppKey[PeerNode] = web.AppKey("node")


async def ping(request: web.Request) -> web.Response:
    return json_response({"peer_id": request.app[NODE].peer_id, "caller": request[PEER_ID]})


async def status(request: web.Request) -> web.Response:
    return json_response(request.app[NODE].status())


async def execute(request: web.Request) -> web.Response:
    req = await read_model(request, ExecuteRequest)
    results = await request.app[NODE].executor.execute(request[PEER_ID], req.tasks)
    return json_response(ExecuteResponse(results=results))


async def cancel(request: web.Request) -> web.Response:
    request.app[NODE].executor.cancel_for(request[PEER_ID], task_id_of(request))
    return json_response({"ok": True})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/ping", ping)
    app.router.add_get("/v1/status", status)
    app.router.add_post("/v1/execute", execute)
    app.router.add_post("/v1/tasks/{task_id}/cancel", cancel)
