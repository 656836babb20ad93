"""The peer's cluster-plane routes (mutual TLS; the caller is a verified member)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from peeros.net.server import PEER_ID, json_response

if TYPE_CHECKING:
    from peeros.peer.node import PeerNode

NODE: web.AppKey[PeerNode] = web.AppKey("node")


async def ping(request: web.Request) -> web.Response:
    return json_response({"peer_id": request.app[NODE].peer_id, "caller": request[PEER_ID]})


async def status(request: web.Request) -> web.Response:
    return json_response(request.app[NODE].status())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/ping", ping)
    app.router.add_get("/v1/status", status)
