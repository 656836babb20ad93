"""The tracker's cluster-plane routes: parse, call one service method, reply."""

from __future__ import annotations

from aiohttp import web

from peeros.net.link_server import Op
from peeros.net.server import PEER_ID, json_response, read_model
from peeros.protocol import (
    CAResponse,
    EnrollRequest,
    Heartbeat,
    PeerList,
    PlacementRequest,
    Placements,
)
from peeros.security.pki import cert_pem
from peeros.tracker.service import TrackerService

SERVICE = web.AppKey("service", TrackerService)

#: Routes a node that is not yet a member may reach (with an enrollment certificate).
OPEN_PATHS = ("/v1/ca", "/v1/enroll")


async def get_ca(request: web.Request) -> web.Response:
    return json_response(CAResponse(ca_pem=cert_pem(request.app[SERVICE].ca.cert)))


async def enroll(request: web.Request) -> web.Response:
    req = await read_model(request, EnrollRequest)
    return json_response(request.app[SERVICE].enroll(req))


async def heartbeat(request: web.Request) -> web.Response:
    hb = await read_model(request, Heartbeat)
    return json_response(request.app[SERVICE].heartbeat(request[PEER_ID], hb))


async def leave(request: web.Request) -> web.Response:
    request.app[SERVICE].leave(request[PEER_ID])
    return json_response({"ok": True})


async def peers(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    return json_response(PeerList(peers=service.registry.infos(service.clock())))


async def place(request: web.Request) -> web.Response:
    req = await read_model(request, PlacementRequest)
    return json_response(request.app[SERVICE].place(req))


def link_ops(service: TrackerService) -> dict[str, Op]:
    """What peers may call over a link (``net/link.py``): placement, on every task."""

    async def placement(caller: str, body: str) -> Placements:
        return service.place(PlacementRequest.model_validate_json(body))

    return {"placement": placement}


async def status(request: web.Request) -> web.Response:
    return json_response(request.app[SERVICE].status())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/ca", get_ca)
    app.router.add_post("/v1/enroll", enroll)
    app.router.add_post("/v1/heartbeat", heartbeat)
    app.router.add_post("/v1/leave", leave)
    app.router.add_get("/v1/peers", peers)
    app.router.add_post("/v1/placement", place)
    app.router.add_get("/v1/status", status)
