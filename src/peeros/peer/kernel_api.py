"""Routes of the kernel on both planes (thin: parse, call one method, reply)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from peeros.errors import BadRequest
from peeros.net.server import json_response, read_model
from peeros.protocol import (
    AllocFreeRequest,
    AllocPolicyRequest,
    AllocRequest,
    DeadlockResolveRequest,
    PidRequest,
    PidsRequest,
    ProcCreateRequest,
    ProcKillRequest,
)

if TYPE_CHECKING:
    from peeros.peer.node import PeerNode

NODE: web.AppKey[PeerNode] = web.AppKey("kernel-node")


# --- user plane -------------------------------------------------------------------------


async def proc_list(request: web.Request) -> web.Response:
    return json_response(await request.app[NODE].cluster_kernel.processes())


async def proc_create(request: web.Request) -> web.Response:
    req = await read_model(request, ProcCreateRequest)
    return json_response(request.app[NODE].kernel.create_plain(req.name, req.parent, req.group))


async def proc_kill(request: web.Request) -> web.Response:
    req = await read_model(request, ProcKillRequest)
    return json_response(await request.app[NODE].cluster_kernel.kill(req.pid, req.group))


async def kernel_state(request: web.Request) -> web.Response:
    return json_response(request.app[NODE].kernel.state())


async def alloc_show(request: web.Request) -> web.Response:
    return json_response(request.app[NODE].kernel.state()["allocator"])


async def alloc_op(request: web.Request) -> web.Response:
    kernel = request.app[NODE].kernel
    op = request.match_info["op"]
    if op == "alloc":
        req = await read_model(request, AllocRequest)
        kernel.allocator.allocate(req.name, req.size)
    elif op == "free":
        free = await read_model(request, AllocFreeRequest)
        kernel.allocator.free(free.name)
        request.app[NODE].scheduler.kick()
    elif op == "policy":
        pol = await read_model(request, AllocPolicyRequest)
        kernel.allocator.set_policy(pol.policy)
    else:
        raise BadRequest(f"no allocator operation {op!r}; expected alloc, free or policy")
    return json_response(kernel.state()["allocator"])


async def deadlock(request: web.Request) -> web.Response:
    return json_response(await request.app[NODE].cluster_kernel.deadlock())


async def deadlock_resolve(request: web.Request) -> web.Response:
    req = await read_model(request, DeadlockResolveRequest)
    return json_response(await request.app[NODE].cluster_kernel.kill(req.victim))


def add_user_routes(app: web.Application) -> None:
    app.router.add_get("/v1/proc", proc_list)
    app.router.add_post("/v1/proc/create", proc_create)
    app.router.add_post("/v1/proc/kill", proc_kill)
    app.router.add_get("/v1/kernel", kernel_state)
    app.router.add_get("/v1/alloc", alloc_show)
    app.router.add_post("/v1/alloc/{op}", alloc_op)
    app.router.add_get("/v1/deadlock", deadlock)
    app.router.add_post("/v1/deadlock/resolve", deadlock_resolve)


# --- cluster plane ----------------------------------------------------------------------


async def local_procs(request: web.Request) -> web.Response:
    return json_response(request.app[NODE].cluster_kernel.local_processes())


async def kill_local(request: web.Request) -> web.Response:
    req = await read_model(request, PidsRequest)
    return json_response({"killed": request.app[NODE].kernel.kill_local(req.pids, "killed")})


async def collect(request: web.Request) -> web.Response:
    req = await read_model(request, PidRequest)
    request.app[NODE].kernel.collect(req.pid)
    return json_response({"ok": True})


async def edges(request: web.Request) -> web.Response:
    return json_response(request.app[NODE].cluster_kernel.local_edges())


def add_cluster_routes(app: web.Application) -> None:
    app.router.add_get("/v1/proc/local", local_procs)
    app.router.add_post("/v1/proc/kill-local", kill_local)
    app.router.add_post("/v1/proc/collect", collect)
    app.router.add_get("/v1/kernel/edges", edges)
