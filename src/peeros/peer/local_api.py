"""The peer's user-plane API (127.0.0.1, bearer token): what Client, CLI and dashboard use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from peeros.net.server import json_response

if TYPE_CHECKING:
    from peeros.peer.node import PeerNode

NODE: web.AppKey[PeerNode] = web.AppKey("node")


async def status(request: web.Request) -> web.Response:
    return json_response(request.app[NODE].status())


async def peers(request: web.Request) -> web.Response:
    return json_response(await request.app[NODE].peers())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/status", status)
    app.router.add_get("/v1/peers", peers)
