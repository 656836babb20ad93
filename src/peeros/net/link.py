"""Peer links: one long-lived WebSocket per node pair on the cluster plane, carrying many
calls at once.

Why: a call over HTTP costs a request object, headers to write and parse, and a
response object on both sides; on this kind of machine that is ≈0.2 ms of CPU per call
and per side, the biggest piece of a remote task's round trip after the task itself. A
link is opened once (``GET /v1/link``, upgraded to a WebSocket, inside the same mutual
TLS and through the same middlewares: the caller's peer id comes from its certificate,
a non-member is refused before the upgrade) and then carries small text frames:

* call:  ``{"id": N, "op": "execute", "body": {...}}``
* reply: ``{"id": N, "body": {...}}`` or ``{"id": N, "error": {"status", "code", "message"}}``

Calls on one link run concurrently and their replies come back in any order (matched
by ``id``). Errors keep their meaning: a node that cannot be connected to is
:class:`~peeros.errors.Unreachable` (nothing was sent), a link that breaks or a call
that outlives its timeout is :class:`~peeros.errors.Unavailable` (it may have run), an
error the remote raised comes back as the same :class:`~peeros.errors.PeerOSError`.
A call whose link closes is not resent: the caller decides, as with HTTP. A node that
has no ``/v1/link`` route (an older version) is called over plain HTTP instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ValidationError

from peeros.errors import BadRequest, PeerOSError, Unavailable, Unreachable, from_wire
from peeros.net.client import ClusterClient, parse
from peeros.net.server import MAX_BODY, PEER_ID, describe_validation

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
#: An operation: (caller's peer id, the call's JSON body) -> the reply.
Op = Callable[[str, Any], Awaitable[BaseModel]]

LINK_PATH = "/v1/link"
#: Seconds between WebSocket pings; a link whose pong is late is closed (a vanished node).
HEARTBEAT = 15.0
#: Seconds a stopping node waits for the other ends to acknowledge its links' closing.
CLOSE_WAIT = 1.0


class LinkServer:
    """Serves ``/v1/link``: each frame is one call of a named operation."""

    def __init__(self, ops: dict[str, Op]) -> None:
        self.ops = ops
        self.calls_served = 0
        self._open: set[web.WebSocketResponse] = set()

    def add_route(self, app: web.Application) -> None:
        app.router.add_get(LINK_PATH, self.handle)
        app.on_shutdown.append(self._close_all)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(
            max_msg_size=request.app[MAX_BODY] + 4096,
            compress=False,
            heartbeat=2 * HEARTBEAT,  # a caller that vanished does not hold its link forever
        )
        await ws.prepare(request)
        caller = request[PEER_ID]
        running: set[asyncio.Task[None]] = set()
        self._open.add(ws)
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    await ws.close(code=aiohttp.WSCloseCode.UNSUPPORTED_DATA)
                    break
                task = asyncio.create_task(self._call(ws, caller, msg.data))
                running.add(task)
                task.add_done_callback(running.discard)
        finally:
            self._open.discard(ws)
        # Calls still running finish (as an HTTP handler would) and their replies are dropped.
        return ws

    async def _call(self, ws: web.WebSocketResponse, caller: str, text: str) -> None:
        call_id: Any = None
        try:
            frame = json.loads(text)
            if not isinstance(frame, dict) or not isinstance(frame.get("id"), int):
                raise BadRequest("a link frame must be a JSON object with an integer id")
            call_id = frame["id"]
            name = frame.get("op")
            op = self.ops.get(name) if isinstance(name, str) else None
            if op is None:
                raise BadRequest(f"no link operation {name!r}")
            self.calls_served += 1
            body = (await op(caller, frame.get("body"))).model_dump_json()
            reply = f'{{"id": {call_id}, "body": {body}}}'
        except PeerOSError as exc:
            reply = _error_frame(call_id, exc.status, exc.code, exc.message)
        except ValidationError as exc:
            reply = _error_frame(call_id, 400, "bad_request", describe_validation(exc))
        except ValueError as exc:
            reply = _error_frame(call_id, 400, "bad_request", f"a link frame is not JSON: {exc}")
        except Exception:
            log.exception("unhandled error in link call from %s", caller)
            reply = _error_frame(call_id, 500, "internal", "internal error (see the node's log)")
        if not ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(reply)

    async def _close_all(self, app: web.Application) -> None:
        closing = [
            ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"node stopping")
            for ws in list(self._open)
        ]
        await _within(CLOSE_WAIT, closing)


def _error_frame(call_id: Any, status: int, code: str, message: str) -> str:
    error = {"status": status, "code": code, "message": message}
    return json.dumps({"id": call_id if isinstance(call_id, int) else None, "error": error})


class _Link:
    """One open link: sends calls, and a reader task hands each reply to its caller."""

    def __init__(self, address: str, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.address = address
        self.ws = ws
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.ids = itertools.count(1)
        self.reader = asyncio.create_task(self._read())

    @property
    def closed(self) -> bool:
        return self.ws.closed or self.reader.done()

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                frame = json.loads(msg.data)
                future = self.pending.pop(frame.get("id"), None)
                if future is not None and not future.done():
                    future.set_result(frame)
        except (ValueError, aiohttp.ClientError, ConnectionError) as exc:
            log.info("link to %s broke: %s", self.address, exc)
        finally:
            lost = Unavailable(f"the link to {self.address} closed before it answered")
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(lost)
            self.pending.clear()
            await self.ws.close()

    async def call(self, op: str, body: str, timeout: float | None) -> dict[str, Any]:
        call_id = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[call_id] = future
        try:
            await self.ws.send_str(f'{{"id": {call_id}, "op": "{op}", "body": {body}}}')
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError as exc:
            raise Unavailable(f"{self.address} did not answer within {timeout:g} s") from exc
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            raise Unavailable(f"the link to {self.address} failed: {exc!r}") from exc
        finally:
            self.pending.pop(call_id, None)

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


class LinkClient:
    """Calls other nodes over links, opened on first use and reopened when they break."""

    def __init__(self, client: ClusterClient, max_message: int) -> None:
        self.client = client
        self.max_message = max_message
        self._links: dict[str, _Link] = {}
        self._opening: dict[str, asyncio.Lock] = {}
        self._http_only: set[str] = set()

    async def call(
        self, address: str, op: str, body: BaseModel, response: type[M], timeout: float | None
    ) -> M:
        if address in self._http_only:
            return await self._over_http(address, op, body, response, timeout)
        link = await self._link(address)
        if link is None:
            return await self._over_http(address, op, body, response, timeout)
        if timeout is None:
            timeout = self.client.timeout
        frame = await link.call(op, body.model_dump_json(), timeout)
        error = frame.get("error")
        if isinstance(error, dict):
            raise from_wire(error.get("status", 500), error.get("code"), error.get("message", ""))
        return parse(response, frame.get("body"), address)

    async def _over_http(
        self, address: str, op: str, body: BaseModel, response: type[M], timeout: float | None
    ) -> M:
        result: M = await self.client.request(
            address, "POST", f"/v1/{op}", body, response, timeout=timeout
        )
        return result

    async def _link(self, address: str) -> _Link | None:
        link = self._links.get(address)
        if link is not None and not link.closed:
            return link
        async with self._opening.setdefault(address, asyncio.Lock()):
            link = self._links.get(address)
            if link is not None and not link.closed:
                return link
            try:
                ws = await self.client.session().ws_connect(
                    f"https://{address}{LINK_PATH}",
                    heartbeat=HEARTBEAT,
                    max_msg_size=self.max_message + 4096,
                    compress=0,  # small JSON frames: deflate would cost more than it saves
                )
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status == 404:  # an older node: no links there
                    self._http_only.add(address)
                    return None
                raise from_wire(
                    exc.status, None, f"{address} refused the link: {exc.message}"
                ) from exc
            except aiohttp.ClientConnectorError as exc:  # refused, no route: nothing was sent
                raise Unreachable(f"cannot reach {address}: {exc}") from exc
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                raise Unavailable(f"cannot reach {address}: {exc!r}") from exc
            link = _Link(address, ws)
            self._links[address] = link
            return link

    def open_links(self) -> int:
        return sum(not link.closed for link in self._links.values())

    async def close(self) -> None:
        links, self._links = list(self._links.values()), {}
        await _within(CLOSE_WAIT, [link.close() for link in links])


async def _within(seconds: float, closing: Sequence[Awaitable[Any]]) -> None:
    """Close links together, waiting at most ``seconds`` for a peer to acknowledge (a
    hung one must not hold up a node that stops)."""
    if not closing:
        return
    _, late = await asyncio.wait([asyncio.ensure_future(c) for c in closing], timeout=seconds)
    for task in late:
        task.cancel()
    if late:
        await asyncio.wait(late)
