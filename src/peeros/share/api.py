"""Routes of sharing and search, on both planes of a peer. Parse, call one method, reply.

Cluster plane (other peers, mutual TLS):
  ``GET /v1/share/blobs/{sha256}`` (HTTP ``Range``), ``GET /v1/share/blobs/{sha256}/chunks``.
User plane (bearer token): ``GET /v1/share/files?kind=``, ``POST /v1/share/rescan``,
``POST /v1/share/lookup``, ``POST /v1/share/download`` (NDJSON progress lines, then the
result; a client that goes away stops the download, which resumes on the next call),
``GET /v1/share/stats``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from typing import TYPE_CHECKING

from aiohttp import hdrs, web

from peeros.errors import BadRequest, PeerOSError
from peeros.files.transfer import read_chunks
from peeros.net.server import error_response, json_response, read_model
from peeros.protocol import DownloadRequest, ShareLookup
from peeros.share import flood_service

if TYPE_CHECKING:
    from peeros.share.peer import SharePeer

log = logging.getLogger(__name__)

_SHA = re.compile(r"^[0-9a-f]{64}$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


def _sha(request: web.Request) -> str:
    sha = request.match_info["sha256"]
    if not _SHA.match(sha):
        raise BadRequest("a file hash is 64 lowercase hex digits")
    return sha


async def _send_blob(share: SharePeer, request: web.Request) -> web.StreamResponse:
    path, entry = share.service.find(_sha(request))
    size = entry.size
    start, count = 0, size
    header = request.headers.get(hdrs.RANGE)
    if header is not None:
        m = _RANGE.match(header.strip())
        stop = (int(m.group(2)) + 1 if m.group(2) else size) if m else 0
        if m is None or int(m.group(1)) >= size or stop <= int(m.group(1)):
            err = error_response(416, "range_not_satisfiable", f"bad range {header[:60]!r}")
            err.headers[hdrs.CONTENT_RANGE] = f"bytes */{size}"
            return err
        start, count = int(m.group(1)), min(stop, size) - int(m.group(1))
    fobj = await asyncio.to_thread(path.open, "rb")
    try:
        resp = web.StreamResponse(status=206 if header is not None else 200)
        resp.content_type = "application/octet-stream"
        resp.content_length = count
        resp.headers[hdrs.ACCEPT_RANGES] = "bytes"
        if header is not None:
            resp.headers[hdrs.CONTENT_RANGE] = f"bytes {start}-{start + count - 1}/{size}"
        await resp.prepare(request)
        sent = 0
        async with contextlib.aclosing(read_chunks(fobj, start, count)) as chunks:
            async for chunk in chunks:
                await resp.write(chunk)
                sent += len(chunk)
        if sent != count:  # the file shrank under us: never look complete
            resp.force_close()
            return resp
        await resp.write_eof()
        return resp
    finally:
        fobj.close()


async def _download(share: SharePeer, request: web.Request) -> web.StreamResponse:
    req = await read_model(request, DownloadRequest)
    resp = web.StreamResponse()
    resp.content_type = "application/x-ndjson"
    started = False

    async def line(obj: object) -> None:
        nonlocal started
        if not started:
            await resp.prepare(request)
            started = True
        await resp.write((json.dumps(obj) + "\n").encode())

    async def progress(done: int, total: int) -> None:
        await line({"event": "progress", "done": done, "total": total})

    try:
        result = await share.download(req, progress)
    except ConnectionError:
        log.info("the client of a download went away; stopped, progress kept for a resume")
        return resp
    except PeerOSError as exc:
        if not started:
            raise
        await line({"event": "error", "code": exc.code, "message": exc.message})
    else:
        await line({"event": "done", "result": result.model_dump(mode="json")})
    await resp.write_eof()
    return resp


def add_routes(cluster_app: web.Application, api_app: web.Application, share: SharePeer) -> None:
    async def blob(request: web.Request) -> web.StreamResponse:
        return await _send_blob(share, request)

    async def chunks(request: web.Request) -> web.Response:
        return json_response(share.service.chunk_list(_sha(request)))

    async def files(request: web.Request) -> web.Response:
        return json_response(share.service.listing(request.query.get("kind", "local")))

    async def rescan(request: web.Request) -> web.Response:
        return json_response(await share.service.rescan())

    async def lookup(request: web.Request) -> web.Response:
        return json_response(await share.lookup(await read_model(request, ShareLookup)))

    async def download(request: web.Request) -> web.StreamResponse:
        return await _download(share, request)

    async def stats(request: web.Request) -> web.Response:
        return json_response(await asyncio.to_thread(share.service.stats))

    cluster_app.router.add_get("/v1/share/blobs/{sha256}", blob)
    cluster_app.router.add_get("/v1/share/blobs/{sha256}/chunks", chunks)
    api_app.router.add_get("/v1/share/files", files)
    api_app.router.add_post("/v1/share/rescan", rescan)
    api_app.router.add_post("/v1/share/lookup", lookup)
    api_app.router.add_post("/v1/share/download", download)
    api_app.router.add_get("/v1/share/stats", stats)
    flood_service.add_routes(cluster_app, api_app, share.flood)
