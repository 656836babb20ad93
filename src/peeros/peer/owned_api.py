"""Owned files on both planes of a peer.

User plane (the owner's own user): ``PUT /v1/owned/{name}?replicas=N`` (plaintext body),
``GET /v1/owned/{name}`` (verified plaintext), ``DELETE /v1/owned/{name}``,
``GET /v1/owned?refresh=1``. They call :class:`~peeros.peer.owned.OwnedService`.

Cluster plane (this peer as a holder): ``PUT|GET|DELETE /v1/owned/{owner}/{name}`` on
opaque ciphertext blobs. A store must come from the owner itself (its mTLS identity);
a download or delete must carry the owner's signature (``X-PeerOS-Owner-Auth``),
checked with the replay cache of this peer. Anyone else gets 403 and nothing changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, BinaryIO

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import ValidationError

from peeros.errors import BadRequest, Forbidden, Unavailable
from peeros.files.atomic import TooLarge
from peeros.files.local import check_filename_or_400
from peeros.files.transfer import CHUNK, read_chunks, write_stream
from peeros.net.client import parse
from peeros.net.server import PEER_ID, json_response, read_model
from peeros.peer import local_api, routes
from peeros.peer.owned import holder_path
from peeros.protocol import (
    OWNER_AUTH_HEADER,
    PEER_HEADER,
    REPLICA_HEADER,
    SHA256_HEADER,
    OwnedDeleted,
    OwnedReplicate,
    OwnedStored,
    OwnerAuth,
)
from peeros.security.owner_auth import ReplayGuard

if TYPE_CHECKING:
    from peeros.peer.node import PeerNode

log = logging.getLogger(__name__)

GUARD = web.AppKey("owned_guard", ReplayGuard)
_CUT_OFF = (ConnectionError, aiohttp.ClientPayloadError, HttpProcessingError)
_LINK_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)


def _auth(request: web.Request) -> OwnerAuth | None:
    raw = request.headers.get(OWNER_AUTH_HEADER)
    if raw is None:
        return None
    try:
        return OwnerAuth.model_validate_json(raw)
    except ValidationError as exc:
        raise Forbidden(f"malformed owner signature: {exc.errors()[0]['msg']}") from exc


def _target(request: web.Request) -> tuple[str, str]:
    owner, name = request.match_info["owner"], request.match_info["name"]
    check_filename_or_400(name)
    return owner, name


async def _stream_file(request: web.Request, fobj: BinaryIO, size: int) -> web.StreamResponse:
    """Send an open file (already unlinked or owned by the caller) in constant memory."""
    resp = web.StreamResponse()
    resp.content_type = "application/octet-stream"
    resp.content_length = size
    await resp.prepare(request)
    async with contextlib.aclosing(read_chunks(fobj, 0, size)) as chunks:
        async for chunk in chunks:
            await resp.write(chunk)
    await resp.write_eof()
    return resp


# --- holder (cluster plane) ----------------------------------------------------------


async def hold_put(request: web.Request) -> web.Response:
    node: PeerNode = request.app[routes.NODE]
    owner, name = _target(request)
    store = node.owned_store
    if request[PEER_ID] != owner:
        # A re-replication copy from another holder: allowed only onto a name this peer
        # does not hold yet, so nobody but the owner can replace an owner's blob.
        if REPLICA_HEADER not in request.headers:
            raise Forbidden(f"only peer {owner} may store its owned files here")
        if await asyncio.to_thread(store.path(owner, name).exists):
            raise Forbidden(f"a copy of {name!r} of {owner} is already held here")
    writer = await asyncio.to_thread(store.begin, owner, name, request.content_length)
    with writer:
        try:
            await write_stream(writer, request.content.iter_chunked(CHUNK))
        except TooLarge as exc:
            raise BadRequest(f"upload of {name!r} is longer than declared") from exc
        except _CUT_OFF as exc:
            raise BadRequest(f"upload of {name!r} was cut off; nothing was stored") from exc
        if writer.size != request.content_length:
            raise BadRequest(f"upload of {name!r} was cut off; nothing was stored")
        await asyncio.to_thread(writer.commit)
    log.info("holding owned file %r of %s (%d bytes)", name, owner, writer.size)
    return json_response(
        OwnedStored(owner_id=owner, name=name, stored_size=writer.size, peer_id=node.peer_id)
    )


async def hold_get(request: web.Request) -> web.StreamResponse:
    node: PeerNode = request.app[routes.NODE]
    owner, name = _target(request)
    request.app[GUARD].admit(_auth(request), "download", owner, name, time.time())
    fobj, size = await asyncio.to_thread(node.owned_store.open, owner, name)
    try:
        return await _stream_file(request, fobj, size)
    finally:
        fobj.close()


async def hold_delete(request: web.Request) -> web.Response:
    node: PeerNode = request.app[routes.NODE]
    owner, name = _target(request)
    request.app[GUARD].admit(_auth(request), "delete", owner, name, time.time())
    await asyncio.to_thread(node.owned_store.delete, owner, name)
    log.info("deleted owned file %r of %s", name, owner)
    return json_response(OwnedDeleted(name=name, removed_from=[node.peer_id]))


async def hold_replicate(request: web.Request) -> web.Response:
    """Push this holder's copy to another peer (the tracker's re-replication)."""
    node: PeerNode = request.app[routes.NODE]
    req = await read_model(request, OwnedReplicate)
    fobj, size = await asyncio.to_thread(node.owned_store.open, req.owner_id, req.name)
    assert node.client is not None
    headers = {
        "Content-Length": str(size),
        "Content-Type": "application/octet-stream",
        REPLICA_HEADER: node.peer_id,
    }
    path = holder_path(req.owner_id, req.name)
    try:
        body = read_chunks(fobj, 0, size)
        async with node.client.stream(
            req.target.address, "PUT", path, data=body, headers=headers
        ) as up:
            receipt = parse(OwnedStored, await up.json(), req.target.address)
    except _LINK_ERRORS as exc:
        raise Unavailable(f"copy to {req.target.peer_id} failed: {exc!r}") from exc
    finally:
        fobj.close()
    log.info("copied %r of %s to %s", req.name, req.owner_id, req.target.peer_id)
    return json_response(receipt)


# --- owner (user plane) --------------------------------------------------------------


async def user_upload(request: web.Request) -> web.Response:
    node: PeerNode = request.app[local_api.NODE]
    name = check_filename_or_400(request.match_info["name"])
    try:
        replicas = int(request.query.get("replicas", "2"))
    except ValueError:
        raise BadRequest("replicas must be an integer") from None
    if not 1 <= replicas <= 16:
        raise BadRequest(f"replicas must be between 1 and 16, got {replicas}")
    if request.content_length is None:
        raise BadRequest("an owned-file upload must declare its Content-Length")
    body = request.content.iter_chunked(CHUNK)
    return json_response(await node.owned.upload(name, replicas, request.content_length, body))


async def user_download(request: web.Request) -> web.StreamResponse:
    node: PeerNode = request.app[local_api.NODE]
    name = check_filename_or_400(request.match_info["name"])
    path, size, digest = await node.owned.download(name)
    fobj = await asyncio.to_thread(open, path, "rb")
    path.unlink(missing_ok=True)  # the open file lives on until closed
    try:
        resp = web.StreamResponse()
        resp.content_type = "application/octet-stream"
        resp.content_length = size
        resp.headers[SHA256_HEADER] = digest
        resp.headers[PEER_HEADER] = node.peer_id
        await resp.prepare(request)
        async with contextlib.aclosing(read_chunks(fobj, 0, size)) as chunks:
            async for chunk in chunks:
                await resp.write(chunk)
        await resp.write_eof()
        return resp
    finally:
        fobj.close()


async def user_delete(request: web.Request) -> web.Response:
    node: PeerNode = request.app[local_api.NODE]
    name = check_filename_or_400(request.match_info["name"])
    return json_response(await node.owned.delete(name))


async def user_list(request: web.Request) -> web.Response:
    node: PeerNode = request.app[local_api.NODE]
    refresh = request.query.get("refresh", "") in ("1", "true", "yes")
    return json_response(await node.owned.list(refresh))


def add_routes(cluster_app: web.Application, api_app: web.Application) -> None:
    """Register ``/v1/owned`` on both planes of a peer."""
    cluster_app[GUARD] = ReplayGuard()
    cluster_app.router.add_put("/v1/owned/{owner}/{name}", hold_put)
    cluster_app.router.add_get("/v1/owned/{owner}/{name}", hold_get)
    cluster_app.router.add_delete("/v1/owned/{owner}/{name}", hold_delete)
    cluster_app.router.add_post("/v1/owned/replicate", hold_replicate)
    api_app.router.add_get("/v1/owned", user_list)
    api_app.router.add_put("/v1/owned/{name}", user_upload)
    api_app.router.add_get("/v1/owned/{name}", user_download)
    api_app.router.add_delete("/v1/owned/{name}", user_delete)
