"""The peer's cluster-plane routes (mutual TLS; the caller is a verified member)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from peeros.errors import BadRequest
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


async def memory(request: web.Request) -> web.Response:
    """A member uses this peer's store; its writes count against its own quota."""
    node = request.app[NODE]
    op = request.match_info["op"]
    req = await read_model(request, node.memory.model_for(op))
    if getattr(req, "on", None):
        raise BadRequest("'on' is for the user plane; peers do not relay memory requests")
    return json_response(node.memory.run(op, request[PEER_ID], req))


async def ipc(request: web.Request) -> web.Response:
    """A member (a task's peer, or a user plane forwarding ``on``) uses this peer's IPC."""
    node = request.app[NODE]
    op = request.match_info["op"]
    req = await read_model(request, node.ipc.model_for(op))
    if getattr(req, "on", None):
        raise BadRequest("'on' is for the user plane; peers do not relay IPC requests")
    return json_response(await node.ipc.run(op, node.ipc.prepare(req)))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/ping", ping)
    app.router.add_get("/v1/status", status)
    app.router.add_post("/v1/execute", execute)
    app.router.add_post("/v1/tasks/{task_id}/cancel", cancel)
    app.router.add_post("/v1/memory/{op}", memory)
    app.router.add_post("/v1/ipc/{op}", ipc)
