"""The tracker's owned-file routes: parse, call one :class:`OwnedRegistry` method, reply."""

from __future__ import annotations

from aiohttp import web

from peeros.net.server import PEER_ID, json_response, read_model
from peeros.protocol import OwnedAllocate, OwnedBadCopy, OwnedCommit, OwnedSigned
from peeros.tracker.owned import OwnedRegistry

OWNED = web.AppKey("owned", OwnedRegistry)


async def allocate(request: web.Request) -> web.Response:
    req = await read_model(request, OwnedAllocate)
    return json_response(request.app[OWNED].allocate(request[PEER_ID], req))


async def commit(request: web.Request) -> web.Response:
    req = await read_model(request, OwnedCommit)
    return json_response(request.app[OWNED].commit(request[PEER_ID], req))


async def list_owned(request: web.Request) -> web.Response:
    return json_response(request.app[OWNED].files_of(request[PEER_ID]))


async def locate(request: web.Request) -> web.Response:
    req = await read_model(request, OwnedSigned)
    return json_response(request.app[OWNED].locate(request[PEER_ID], req.auth))


async def delete(request: web.Request) -> web.Response:
    req = await read_model(request, OwnedSigned)
    return json_response(request.app[OWNED].delete(request[PEER_ID], req.auth))


async def bad_copy(request: web.Request) -> web.Response:
    req = await read_model(request, OwnedBadCopy)
    return json_response(request.app[OWNED].mark_bad(request[PEER_ID], req))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/owned/allocate", allocate)
    app.router.add_post("/v1/owned/commit", commit)
    app.router.add_get("/v1/owned", list_owned)
    app.router.add_post("/v1/owned/locate", locate)
    app.router.add_post("/v1/owned/delete", delete)
    app.router.add_post("/v1/owned/bad", bad_copy)
