"""Several files in one response: ``POST /v1/files-batch`` on both planes.

For many small files the cost of a download is the request, not the bytes: routing,
middlewares, headers and a round trip each, on the client, the peer and any relay. A
batch asks for up to ``MAX_FILE_BATCH`` names at once and gets them back-to-back in one
streamed body (framing in :class:`~peeros.protocol.FileBatchRequest`): for each name a
line of JSON (its :class:`~peeros.protocol.FileInfo`, SHA-256 included) and then exactly
its bytes, small files coalesced into large writes, big ones streamed in 1 MiB chunks,
so memory stays constant. A name that cannot be sent (missing, say) ends the body with
an error line; the client then saves nothing. Every name is checked before any byte is
sent (a bad one is a 400 for the whole batch).

On the user plane, ``?on=PEER`` relays the request to that peer's cluster-plane route
and streams its body back, as single downloads are.
"""

from __future__ import annotations

import contextlib
import logging
from io import BufferedReader
from typing import TYPE_CHECKING

from aiohttp import hdrs, web

from peeros.errors import PeerOSError, Unavailable
from peeros.files.local import check_filename_or_400
from peeros.files.transfer import CHUNK, read_chunks
from peeros.net.server import read_model
from peeros.peer import local_api, routes
from peeros.peer.files_api import open_for_sending, relay_body
from peeros.protocol import (
    BATCH_TYPE,
    PEER_HEADER,
    ErrorDetail,
    FileBatchError,
    FileBatchRequest,
)

if TYPE_CHECKING:
    from peeros.peer.node import PeerNode

log = logging.getLogger(__name__)

PATH = "/v1/files-batch"
#: Peer-to-peer failures while relaying a body (after the response head was sent).
#: Small files are gathered into writes of about this size.
_FLUSH = 256 << 10


async def _names(request: web.Request) -> list[str]:
    names = (await read_model(request, FileBatchRequest)).names
    for name in names:
        check_filename_or_400(name)
    return names


async def send_batch(node: PeerNode, request: web.Request, names: list[str]) -> web.StreamResponse:
    """Stream ``names`` back-to-back, each a JSON head line then its bytes."""
    resp = web.StreamResponse(headers={hdrs.CONTENT_TYPE: BATCH_TYPE, PEER_HEADER: node.peer_id})
    await resp.prepare(request)
    out = bytearray()
    for name in names:
        try:
            fobj, info, data = await open_for_sending(node.files, name)
        except PeerOSError as exc:
            failed = FileBatchError(
                name=name, error=ErrorDetail(code=exc.code, message=exc.message)
            )
            out += failed.model_dump_json().encode() + b"\n"
            break
        try:
            out += info.model_dump_json().encode() + b"\n"
            if data is not None:
                out += data
            else:
                await resp.write(bytes(out))
                out.clear()
                if not await _stream(resp, fobj, info.size):
                    log.info("batch download cut off at %r: the file shrank", name)
                    resp.force_close()  # the framing cannot go on: the client sees it cut
                    return resp
        finally:
            fobj.close()
        if len(out) >= _FLUSH:
            await resp.write(bytes(out))
            out.clear()
    if out:
        await resp.write(bytes(out))
    await resp.write_eof()
    return resp


async def _stream(resp: web.StreamResponse, fobj: BufferedReader, size: int) -> bool:
    """Write ``size`` bytes of a big file; False if it had fewer."""
    sent = 0
    async with contextlib.aclosing(read_chunks(fobj, 0, size)) as chunks:
        async for chunk in chunks:
            await resp.write(chunk)
            sent += len(chunk)
    return sent == size


async def relay_batch(
    node: PeerNode, request: web.Request, address: str, names: list[str]
) -> web.StreamResponse:
    """The batch from the peer at ``address``, streamed through."""
    assert node.client is not None
    body = FileBatchRequest(names=names).model_dump_json().encode()
    stream = node.client.stream(
        address,
        "POST",
        PATH,
        data=body,
        headers={hdrs.CONTENT_TYPE: "application/json"},
        read_bufsize=CHUNK,
    )
    async with stream as up:
        headers = {k: up.headers[k] for k in (hdrs.CONTENT_TYPE, PEER_HEADER) if k in up.headers}
        resp = web.StreamResponse(status=up.status, headers=headers)
        await resp.prepare(request)
        await relay_body(up, resp, "a batch", address)
    return resp


def add_routes(cluster_app: web.Application, api_app: web.Application) -> None:
    """Register ``POST /v1/files-batch`` on both planes of a peer."""

    async def user_batch(request: web.Request) -> web.StreamResponse:
        node = request.app[local_api.NODE]
        names = await _names(request)
        address = await node.resolve(request.query.get("on"))
        if address is None:
            return await send_batch(node, request, names)
        try:
            return await relay_batch(node, request, address, names)
        except (TimeoutError, OSError) as exc:
            raise Unavailable(f"peer at {address} failed: {exc!r}") from exc

    async def peer_batch(request: web.Request) -> web.StreamResponse:
        return await send_batch(request.app[routes.NODE], request, await _names(request))

    api_app.router.add_post(PATH, user_batch)
    cluster_app.router.add_post(PATH, peer_batch)
