"""Files on a peer, on both planes: ``/v1/files`` and ``/v1/files/{name}``.

Bodies are raw bytes, streamed both ways. An upload is written through an
:class:`~peeros.files.atomic.AtomicWriter` and checked against ``X-PeerOS-SHA256``;
a download is sent with ``sendfile`` (in 1 MiB chunks over TLS; a file up to
``SMALL_BODY`` in one write with the response head), honours HTTP ``Range`` and
carries the file's SHA-256 in the same header.

On the user plane, ``?on=PEER`` (a peer id or HOST:PORT) makes this peer relay the
request to that peer's cluster-plane route of the same shape, streaming in both
directions, so the user's client only ever talks to its own peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from io import BufferedReader
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import quote

import aiohttp
from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError

from peeros.errors import BadRequest, Unavailable
from peeros.files.atomic import TooLarge
from peeros.files.local import check_filename_or_400, check_sha256
from peeros.files.transfer import CHUNK, read_chunks, write_stream
from peeros.net.client import parse
from peeros.net.server import PEER_ID, error_response, json_response
from peeros.peer import local_api, routes
from peeros.protocol import (
    MODIFIED_HEADER,
    PEER_HEADER,
    SHA256_HEADER,
    FileDeleted,
    FileInfo,
    FileList,
)

if TYPE_CHECKING:
    from peeros.files.local import LocalFiles
    from peeros.peer.node import PeerNode

log = logging.getLogger(__name__)

#: Response headers a relay passes on from the peer that holds the file.
_RELAYED = (
    hdrs.CONTENT_TYPE,
    hdrs.CONTENT_RANGE,
    hdrs.ACCEPT_RANGES,
    hdrs.ETAG,
    SHA256_HEADER,
    MODIFIED_HEADER,
    PEER_HEADER,
)
#: Peer-to-peer failures while relaying a body (after the response head was sent).
_LINK_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)
#: A request body that ends early (the sender closed or broke the connection).
_CUT_OFF = (ConnectionError, aiohttp.ClientPayloadError, HttpProcessingError)
#: Bodies up to this size are read whole and sent in one write with the response head:
#: for small files the per-request work, not the bytes, is the cost.
SMALL_BODY = 64 << 10


def _path(name: str | None = None) -> str:
    return "/v1/files" if name is None else "/v1/files/" + quote(name, safe="")


# --- this peer's own storage ---------------------------------------------------------


async def store_upload(node: PeerNode, request: web.Request, name: str) -> FileInfo:
    """Stream the request body into ``name``: verified, size-limited, atomic."""
    store = node.files
    expected = check_sha256(request.headers.get(SHA256_HEADER))
    writer = store.begin(name, request.content_length)
    with writer:  # any failure below (cut connection, limit, mismatch) discards the temp file
        try:
            await write_stream(writer, request.content.iter_chunked(CHUNK))
        except TooLarge as exc:
            raise store.too_large() from exc
        except _CUT_OFF as exc:
            log.info("upload of %r cut off after %d bytes: %r", name, writer.size, exc)
            raise BadRequest(
                f"upload of {name!r} was cut off after {writer.size} bytes; nothing was stored"
            ) from exc
        info = await asyncio.to_thread(store.publish, writer, name, expected)
    log.info("stored %r (%d bytes) for %s", name, info.size, request.get(PEER_ID, "local user"))
    return info


def _byte_range(request: web.Request, size: int) -> tuple[int, int] | None:
    """(start, count) of the requested range; ``None`` when it cannot be satisfied."""
    if hdrs.RANGE not in request.headers:
        return 0, size
    try:
        rng = request.http_range
    except ValueError:
        return None
    start, stop = rng.start, rng.stop
    if start is None:
        return 0, size
    if start < 0:  # "bytes=-N": the last N bytes
        start = max(0, size + start)
    stop = size if stop is None else min(stop, size)
    if start >= size or stop <= start:
        return None
    return start, stop - start


async def _send_body(
    request: web.Request, resp: web.StreamResponse, fobj: BinaryIO, start: int, count: int
) -> int:
    """Send ``count`` bytes of ``fobj`` from ``start``; return how many went out.

    Plain TCP (the user plane) uses ``sendfile``. Over TLS asyncio's ``sendfile`` falls
    back to small blocking-free reads that measured ~0.1 GB/s here; 1 MiB chunks read
    ahead in a thread and written through the response reach 0.6-0.9 GB/s.
    """
    if request.transport is None:
        raise ConnectionResetError("the client went away")
    if not request.secure:
        loop = asyncio.get_running_loop()
        try:
            return await loop.sendfile(request.transport, fobj, start, count, fallback=False)
        except (NotImplementedError, asyncio.SendfileNotAvailableError):
            pass  # (uvloop has no sendfile): read ahead and write, as over TLS
    sent = 0
    async with contextlib.aclosing(read_chunks(fobj, start, count)) as chunks:
        async for chunk in chunks:
            await resp.write(chunk)
            sent += len(chunk)
    return sent


def _with_small_body(
    opened: tuple[BufferedReader, FileInfo],
) -> tuple[BufferedReader, FileInfo, bytes | None]:
    """A small file's bytes, read at once from the file as opened."""
    fobj, info = opened
    if info.size > SMALL_BODY:
        return fobj, info, None
    try:
        data = os.pread(fobj.fileno(), info.size, 0)
    except BaseException:
        fobj.close()
        raise
    # Shorter than its size: the file shrank under us; the streaming path cuts it off.
    return fobj, info, data if len(data) == info.size else None


def _open(files: LocalFiles, name: str) -> tuple[BufferedReader, FileInfo, bytes | None]:
    return _with_small_body(files.open(name))


async def open_for_sending(
    files: LocalFiles, name: str
) -> tuple[BufferedReader, FileInfo, bytes | None]:
    """``name`` opened with its metadata, and its bytes if it is small; the caller closes it.

    A file whose hash is known in memory is opened (and, if small, read) right here;
    otherwise in a thread, which may read its sidecar or hash it.
    """
    known = files.open_known(name)
    if known is not None:
        return _with_small_body(known)
    return await asyncio.to_thread(_open, files, name)


async def send_file(node: PeerNode, request: web.Request, name: str) -> web.StreamResponse:
    """Send ``name``: its hash in a header, ``Range`` honoured, constant memory."""
    fobj, info, data = await open_for_sending(node.files, name)
    try:
        span = _byte_range(request, info.size)
        if span is None:
            err = error_response(
                416,
                "range_not_satisfiable",
                f"range {request.headers[hdrs.RANGE]!r} is outside file {name!r} "
                f"({info.size} bytes)",
            )
            err.headers[hdrs.CONTENT_RANGE] = f"bytes */{info.size}"
            return err
        start, count = span
        partial = hdrs.RANGE in request.headers
        headers = {
            hdrs.CONTENT_TYPE: "application/octet-stream",
            hdrs.ACCEPT_RANGES: "bytes",
            hdrs.ETAG: f'"{info.sha256}"',
            SHA256_HEADER: info.sha256,
            MODIFIED_HEADER: repr(info.modified),
            PEER_HEADER: info.peer_id,
        }
        if partial:
            headers[hdrs.CONTENT_RANGE] = f"bytes {start}-{start + count - 1}/{info.size}"
        if data is not None and request.method != hdrs.METH_HEAD:
            body = data[start : start + count]
            return web.Response(body=body, status=206 if partial else 200, headers=headers)
        resp = web.StreamResponse(status=206 if partial else 200, headers=headers)
        resp.content_length = count
        await resp.prepare(request)
        if count and request.method != hdrs.METH_HEAD:
            try:
                sent = await _send_body(request, resp, fobj, start, count)
            except (ConnectionError, RuntimeError) as exc:
                log.info("download of %r cut off: %s", name, exc)
                sent = -1
            if sent != count:  # cut off, or the file shrank under us: never look complete
                resp.force_close()
                return resp
        await resp.write_eof()
        return resp
    finally:
        fobj.close()


# --- relaying to another peer (user plane, ?on=PEER) ---------------------------------


async def relay_upload(node: PeerNode, request: web.Request, address: str, name: str) -> FileInfo:
    assert node.client is not None
    headers: dict[str, str] = {hdrs.CONTENT_TYPE: "application/octet-stream"}
    if SHA256_HEADER in request.headers:
        headers[SHA256_HEADER] = request.headers[SHA256_HEADER]
    if request.content_length is not None:
        headers[hdrs.CONTENT_LENGTH] = str(request.content_length)
    body = request.content.iter_chunked(CHUNK)
    async with node.client.stream(address, "PUT", _path(name), data=body, headers=headers) as up:
        try:
            data = await up.json()
        except _LINK_ERRORS as exc:
            raise Unavailable(f"peer at {address} failed while answering: {exc!r}") from exc
    return parse(FileInfo, data, address)


async def relay_download(
    node: PeerNode, request: web.Request, address: str, name: str
) -> web.StreamResponse:
    assert node.client is not None
    headers = {k: request.headers[k] for k in (hdrs.RANGE,) if k in request.headers}
    path = _path(name)
    stream = node.client.stream(
        address, request.method, path, headers=headers, passthrough=(416,), read_bufsize=CHUNK
    )
    async with stream as up:
        relayed = {str(key): up.headers[key] for key in _RELAYED if key in up.headers}
        length = up.content_length
        if length is not None and length <= SMALL_BODY and request.method != hdrs.METH_HEAD:
            try:
                data = await up.read()
            except _LINK_ERRORS as exc:  # nothing sent yet: a clean error response
                raise Unavailable(f"peer at {address} failed while sending: {exc!r}") from exc
            return web.Response(body=data, status=up.status, headers=relayed)
        resp = web.StreamResponse(status=up.status, headers=relayed)
        if up.content_length is not None:
            resp.content_length = up.content_length
        await resp.prepare(request)
        await relay_body(up, resp, repr(name), address)
    return resp


async def relay_body(
    up: aiohttp.ClientResponse, resp: web.StreamResponse, what: str, address: str
) -> None:
    """Pass ``up``'s body on through ``resp`` (prepared). The head is sent: a failure can
    only cut the body short (the client sees it end early)."""
    try:
        async for chunk in up.content.iter_chunked(CHUNK):
            await resp.write(chunk)
        await resp.write_eof()
    except _LINK_ERRORS as exc:
        log.warning("relaying %s from %s failed: %r", what, address, exc)
        resp.force_close()


# --- routes --------------------------------------------------------------------------


def _name(request: web.Request) -> str:
    """The file name of the route, checked (a bad name is a 400 before anything else)."""
    name = request.match_info["name"]
    check_filename_or_400(name)
    return name


def add_routes(cluster_app: web.Application, api_app: web.Application) -> None:
    """Register ``/v1/files`` on both planes of a peer."""

    async def user_list(request: web.Request) -> web.Response:
        node = request.app[local_api.NODE]
        address = await node.resolve(request.query.get("on"))
        if address is None:
            files = await asyncio.to_thread(node.files.list)
            return json_response(FileList(files=files, peer_id=node.peer_id))
        assert node.client is not None
        got = await node.client.request(address, "GET", _path(), response=FileList)
        return json_response(got)

    async def user_put(request: web.Request) -> web.Response:
        node, name = request.app[local_api.NODE], _name(request)
        address = await node.resolve(request.query.get("on"))
        if address is None:
            return json_response(await store_upload(node, request, name))
        return json_response(await relay_upload(node, request, address, name))

    async def user_get(request: web.Request) -> web.StreamResponse:
        node, name = request.app[local_api.NODE], _name(request)
        address = await node.resolve(request.query.get("on"))
        if address is None:
            return await send_file(node, request, name)
        return await relay_download(node, request, address, name)

    async def user_delete(request: web.Request) -> web.Response:
        node, name = request.app[local_api.NODE], _name(request)
        address = await node.resolve(request.query.get("on"))
        if address is None:
            await asyncio.to_thread(node.files.delete, name)
            return json_response(FileDeleted(name=name, peer_id=node.peer_id))
        assert node.client is not None
        got = await node.client.request(address, "DELETE", _path(name), response=FileDeleted)
        return json_response(got)

    async def peer_list(request: web.Request) -> web.Response:
        node = request.app[routes.NODE]
        files = await asyncio.to_thread(node.files.list)
        return json_response(FileList(files=files, peer_id=node.peer_id))

    async def peer_put(request: web.Request) -> web.Response:
        node = request.app[routes.NODE]
        return json_response(await store_upload(node, request, _name(request)))

    async def peer_get(request: web.Request) -> web.StreamResponse:
        return await send_file(request.app[routes.NODE], request, _name(request))

    async def peer_delete(request: web.Request) -> web.Response:
        node, name = request.app[routes.NODE], _name(request)
        await asyncio.to_thread(node.files.delete, name)
        log.info("deleted %r for %s", name, request[PEER_ID])
        return json_response(FileDeleted(name=name, peer_id=node.peer_id))

    for app, (lister, put, get, delete) in (
        (api_app, (user_list, user_put, user_get, user_delete)),
        (cluster_app, (peer_list, peer_put, peer_get, peer_delete)),
    ):
        app.router.add_get("/v1/files", lister)
        app.router.add_put("/v1/files/{name}", put)
        app.router.add_get("/v1/files/{name}", get)
        app.router.add_delete("/v1/files/{name}", delete)
