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
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ValidationError

from peeros.errors import (
    BadRequest,
    PayloadTooLarge,
    PeerOSError,
    Unavailable,
    Unreachable,
    from_wire,
)
from peeros.net.client import ClusterClient, parse_json
from peeros.net.server import MAX_BODY, PEER_ID, describe_validation
from peeros.protocol import Body

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
#: An operation: (caller's peer id, the call's body as JSON text) -> the reply. It is
#: called as its frame is read: an ``async def`` then runs in a task of its own, while a
#: plain function does its synchronous part at once (e.g. queues a task, which may start
#: on the spot) and returns what the reply awaits — one turn of the event loop sooner.
Op = Callable[[str, str], Awaitable[BaseModel]]

#: The frames this module writes put the id (and the op) first, so that a big body is
#: handed on as text, parsed once by pydantic, instead of a dict to validate afterwards.
_CALL = re.compile(r'\{"id": (\d{1,18}), "op": "([a-z_]{1,32})", "body": ')
_REPLY = re.compile(r'\{"id": (\d{1,18}), "body": ')

LINK_PATH = "/v1/link"
#: The local API's lane (the blocking client's task submissions; peeros.client_lane).
LANE_PATH = "/v1/lane"
#: Seconds between WebSocket pings; a link whose pong is late is closed (a vanished node).
HEARTBEAT = 15.0
#: Seconds a stopping node waits for the other ends to acknowledge its links' closing.
CLOSE_WAIT = 1.0
#: Calls one link may have running on the receiving node at once.
MAX_IN_FLIGHT = 1024
#: Seconds a node without the route is called over HTTP before a link is tried again.
HTTP_ONLY_FOR = 60.0


class LinkServer:
    """Serves ``/v1/link`` (or another path: the local lane): each frame is one call of
    a named operation."""

    def __init__(
        self,
        ops: dict[str, Op],
        path: str = LINK_PATH,
        caller: Callable[[web.Request], str] = lambda request: request[PEER_ID],
    ) -> None:
        self.ops = ops
        self.path = path
        #: Who calls, from the upgrade request (on the cluster plane: its certificate).
        self.caller = caller
        self.calls_served = 0
        self._open: set[web.WebSocketResponse] = set()

    def add_route(self, app: web.Application) -> None:
        app.router.add_get(self.path, self.handle)
        app.on_shutdown.append(self._close_all)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(
            max_msg_size=request.app[MAX_BODY] + 4096,
            compress=False,
            heartbeat=2 * HEARTBEAT,  # a caller that vanished does not hold its link forever
        )
        await ws.prepare(request)
        caller = self.caller(request)
        # At most MAX_IN_FLIGHT calls per link run at once; beyond that the link is not
        # read (TCP pushes back on the caller), as an HTTP/1.1 connection takes one
        # request at a time.
        slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        running: set[asyncio.Task[None]] = set()
        self._open.add(ws)
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    await ws.close(code=aiohttp.WSCloseCode.UNSUPPORTED_DATA)
                    break
                await slots.acquire()
                call_id, started = self._start(caller, msg.data)
                task = asyncio.create_task(self._reply(ws, caller, call_id, started))
                running.add(task)
                task.add_done_callback(running.discard)
                task.add_done_callback(lambda _: slots.release())
        finally:
            self._open.discard(ws)
        # Calls still running finish (as an HTTP handler would) and their replies are dropped.
        return ws

    def _start(self, caller: str, text: str) -> tuple[int | None, Awaitable[BaseModel] | str]:
        """Parse a call frame and call its operation: ``(id, what the reply awaits)``, or
        ``(id, the error frame)`` if the frame or the operation's synchronous part failed."""
        call_id: int | None = None
        try:
            call_id, name, body = _parse_call(text)
            op = self.ops.get(name)
            if op is None:
                raise BadRequest(f"no link operation {name!r}")
            self.calls_served += 1
            return call_id, op(caller, body)
        except Exception as exc:
            return call_id, _error_reply(call_id, caller, exc)

    async def _reply(
        self,
        ws: web.WebSocketResponse,
        caller: str,
        call_id: int | None,
        started: Awaitable[BaseModel] | str,
    ) -> None:
        if isinstance(started, str):
            reply = started
        else:
            try:
                reply_body = (await started).model_dump_json()
                reply = f'{{"id": {call_id}, "body": {reply_body}}}'
            except Exception as exc:
                reply = _error_reply(call_id, caller, exc)
        if not ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(reply)

    async def _close_all(self, app: web.Application) -> None:
        closing = [
            ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"node stopping")
            for ws in list(self._open)
        ]
        await _within(CLOSE_WAIT, closing)


def _parse_call(text: str) -> tuple[int, str, str]:
    """``(id, op, body as JSON text)`` of a call frame; :class:`BadRequest` if it is not one."""
    if (m := _CALL.match(text)) and text.endswith("}"):
        return int(m[1]), m[2], text[m.end() : -1]
    try:  # a frame written by other means: the slow way
        frame = json.loads(text)
    except ValueError as exc:
        raise BadRequest(f"a link frame is not JSON: {exc}") from exc
    if not isinstance(frame, dict) or type(frame.get("id")) is not int:
        raise BadRequest("a link frame must be a JSON object with an integer id")
    name = frame.get("op")
    if not isinstance(name, str):
        raise BadRequest(f"no link operation {name!r}")
    return frame["id"], name, json.dumps(frame.get("body"))


def _error_reply(call_id: int | None, caller: str, exc: Exception) -> str:
    """The error frame for an operation that raised ``exc`` (called in its handler)."""
    if isinstance(exc, PeerOSError):
        return _error_frame(call_id, exc.status, exc.code, exc.message)
    if isinstance(exc, ValidationError):
        return _error_frame(call_id, 400, "bad_request", describe_validation(exc))
    log.exception("unhandled error in link call from %s", caller)
    return _error_frame(call_id, 500, "internal", "internal error (see the node's log)")


def _error_frame(call_id: int | None, status: int, code: str, message: str) -> str:
    error = {"status": status, "code": code, "message": message}
    return json.dumps({"id": call_id, "error": error})


def _parse_reply(text: str) -> tuple[int | None, tuple[str | None, dict[str, Any] | None]]:
    """``(id, (body as JSON text, None) or (None, error))`` of a reply frame; the id is
    None for a frame that answers no call (it is dropped)."""
    if (m := _REPLY.match(text)) and text.endswith("}"):
        return int(m[1]), (text[m.end() : -1], None)
    frame = json.loads(text)  # an error, or a reply written by other means
    call_id = frame.get("id") if isinstance(frame, dict) else None
    if type(call_id) is not int:
        return None, (None, None)
    error = frame.get("error")
    if isinstance(error, dict):
        return call_id, (None, error)
    return call_id, (json.dumps(frame.get("body")), None)


class _Link:
    """One open link: sends calls, and a reader task hands each reply to its caller."""

    def __init__(self, address: str, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.address = address
        self.ws = ws
        #: Each call's future gets ``(the body as JSON text, None)`` or ``(None, the error)``.
        self.pending: dict[int, asyncio.Future[tuple[str | None, dict[str, Any] | None]]] = {}
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
                call_id, outcome = _parse_reply(msg.data)
                future = self.pending.pop(call_id, None) if call_id is not None else None
                if future is not None and not future.done():
                    future.set_result(outcome)
        except Exception as exc:  # a broken connection, or a frame that is not a reply
            log.info("link to %s broke: %r", self.address, exc)
        finally:
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(
                        Unavailable(f"the link to {self.address} closed before it answered")
                    )
            self.pending.clear()
            await self.ws.close()

    async def call(
        self, op: str, body: str, timeout: float | None
    ) -> tuple[str | None, dict[str, Any] | None]:
        call_id = next(self.ids)
        future: asyncio.Future[tuple[str | None, dict[str, Any] | None]]
        future = asyncio.get_running_loop().create_future()
        self.pending[call_id] = future
        try:
            try:
                await self.ws.send_str(f'{{"id": {call_id}, "op": "{op}", "body": {body}}}')
            except ConnectionResetError as exc:  # the link was closing: nothing went out
                raise Unreachable(f"the link to {self.address} closed: {exc}") from exc
            except asyncio.CancelledError:
                # Writers of one connection share its drain future: another sender's
                # cancellation reaches us too. Only a cancellation of this task propagates.
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                raise Unavailable(f"sending to {self.address} was interrupted") from None
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
        #: Longest call frame sent (the receiving node refuses longer ones).
        self.max_message = max_message
        self._links: dict[str, _Link] = {}
        #: One opening per address at a time: its callers share the link or the error.
        self._opening: dict[str, asyncio.Future[_Link | None]] = {}
        #: Addresses without the route, and until when they are called over HTTP.
        self._http_only: dict[str, float] = {}
        #: The links' own connections, apart from the request pool (one per link).
        self._session: aiohttp.ClientSession | None = None

    async def call(
        self, address: str, op: str, body: Body, response: type[M], timeout: float | None
    ) -> M:
        link = await self._link(address)
        if link is None:
            result: M = await self.client.request(
                address, "POST", f"/v1/{op}", body, response, timeout=timeout
            )
            return result
        text = body.model_dump_json()
        if len(text) > self.max_message:
            raise PayloadTooLarge(
                f"a {op} call of {len(text)} bytes is over the {self.max_message} bytes a "
                "node accepts"
            )
        reply, error = await link.call(
            op, text, self.client.timeout if timeout is None else timeout
        )
        if error is not None:
            raise from_wire(error.get("status", 500), error.get("code"), error.get("message", ""))
        try:
            return parse_json(response, (reply or "null").encode(), address)
        except ValueError as exc:
            raise PeerOSError(f"{address} sent a reply that is not JSON: {exc}") from exc

    async def _link(self, address: str) -> _Link | None:
        link = self._links.get(address)
        if link is not None and not link.closed:
            return link
        if self._http_only.get(address, 0.0) > time.monotonic():
            return None
        opening = self._opening.get(address)
        if opening is None:
            opening = asyncio.ensure_future(self._open(address))
            self._opening[address] = opening
            opening.add_done_callback(lambda _: self._opening.pop(address, None))
        return await asyncio.shield(opening)

    async def _open(self, address: str) -> _Link | None:
        try:
            if self._session is None or self._session.closed:
                self._session = self.client.new_session(limit=0)
            ws = await self._session.ws_connect(
                f"https://{address}{LINK_PATH}",
                heartbeat=HEARTBEAT,
                max_msg_size=0,  # replies are not limited, as HTTP responses were not
                compress=0,  # small JSON frames: deflate would cost more than it saves
            )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 404:  # an older node: no links there, for a while
                self._http_only[address] = time.monotonic() + HTTP_ONLY_FOR
                return None
            raise from_wire(exc.status, None, f"{address} refused the link: {exc.message}") from exc
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
        """Close every link: the session closes their connections (waiting, within
        bounds, for the TLS shutdowns), then each reader ends and fails what was pending."""
        links, self._links = list(self._links.values()), {}
        if self._session is not None:
            await _within(CLOSE_WAIT, [self._session.close()])
            self._session = None
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
