"""The receiving end of peer links (:mod:`peeros.net.link`) and of the local lane.

:class:`LinkServer` serves ``GET /v1/link`` (or the lane's path): each text frame is one
call of a named operation, answered by one reply frame. An operation returns what the
reply awaits (run in a task of its own), or a :class:`Later` that it gives from a plain
callback: then the frame is written there and then (:func:`write_now`), before the work
that follows in that callback, and no task wakes up to send it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ValidationError

from peeros.errors import BadRequest, PeerOSError
from peeros.net.server import MAX_BODY, PEER_ID, describe_validation

log = logging.getLogger(__name__)

#: The frames this module reads put the id and the op first, so that a big body is
#: handed on as text, parsed once by pydantic, instead of a dict to validate afterwards.
_CALL = re.compile(r'\{"id": (\d{1,18}), "op": "([a-z_]{1,32})", "body": ')

LINK_PATH = "/v1/link"
#: The local API's lane (the blocking client's task submissions; peeros.client_lane).
LANE_PATH = "/v1/lane"
#: Seconds between WebSocket pings; a link whose pong is late is closed (a vanished node).
HEARTBEAT = 15.0
#: Seconds a stopping node waits for the other ends to acknowledge its links' closing.
CLOSE_WAIT = 1.0
#: Calls one link may have running on the receiving node at once.
MAX_IN_FLIGHT = 1024


class Later:
    """The reply of a call that its operation gives later, from a plain callback
    (:meth:`give`): the link writes it the moment it is given."""

    def __init__(self) -> None:
        self._send: Callable[[Callable[[], BaseModel]], None] | None = None
        self._early: Callable[[], BaseModel] | None = None
        self.given = False

    def give(self, make: Callable[[], BaseModel]) -> None:
        """Answer with ``make()`` (built here; what it raises becomes the error reply).
        Only the first answer counts."""
        if self.given:
            return
        self.given = True
        if self._send is None:
            self._early = make
        else:
            self._send(make)

    def bind(self, send: Callable[[Callable[[], BaseModel]], None]) -> None:
        """Called by the link: where answers go (one given already goes now)."""
        self._send = send
        if self._early is not None:
            make, self._early = self._early, None
            send(make)


#: An operation: (caller's peer id, the call's body as JSON text) -> the reply. It is
#: called as its frame is read: an ``async def`` then runs in a task of its own, while a
#: plain function does its synchronous part at once (e.g. queues a task, which may start
#: on the spot) and returns what the reply awaits — one turn of the event loop sooner —
#: or a :class:`Later`.
Op = Callable[[str, str], Awaitable[BaseModel] | Later]


def send_now(ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse, text: str) -> None:
    """Write a text frame in this callback rather than from a task a loop turn later.

    aiohttp's ``send_str`` writes the frame first and only then, if the transport pushed
    back, waits for it to drain. It is run up to that point here and that wait is left
    out: the frame is buffered already, and what is sent this way is bounded (a link's
    replies by the calls it may have in flight, MAX_IN_FLIGHT; calls by their size,
    ``link.SEND_NOW_MAX``). Raises what ``send_str`` raises before that point (e.g.
    ``ConnectionResetError``: the connection is closing, nothing went out).
    """
    sending = ws.send_str(text)
    try:
        sending.send(None)
    except StopIteration:
        return
    sending.close()


def write_now(ws: web.WebSocketResponse, text: str) -> None:
    """:func:`send_now` a reply; a connection that is closing drops it, as it drops any
    late reply."""
    with contextlib.suppress(ConnectionError, RuntimeError):
        send_now(ws, text)


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
                if isinstance(started, Later):
                    started.bind(self._answer_now(ws, caller, call_id, slots))
                    continue
                task = asyncio.create_task(self._reply(ws, caller, call_id, started))
                running.add(task)
                task.add_done_callback(running.discard)
                task.add_done_callback(lambda _: slots.release())
        finally:
            self._open.discard(ws)
        # Calls still running finish (as an HTTP handler would) and their replies are dropped.
        return ws

    def _start(
        self, caller: str, text: str
    ) -> tuple[int | None, Awaitable[BaseModel] | Later | str]:
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

    @staticmethod
    def _answer_now(
        ws: web.WebSocketResponse, caller: str, call_id: int | None, slots: asyncio.Semaphore
    ) -> Callable[[Callable[[], BaseModel]], None]:
        def answer(make: Callable[[], BaseModel]) -> None:
            slots.release()
            try:
                reply = f'{{"id": {call_id}, "body": {make().model_dump_json()}}}'
            except Exception as exc:
                reply = _error_reply(call_id, caller, exc)
            if not ws.closed:
                write_now(ws, reply)

        return answer

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
        await close_within(CLOSE_WAIT, closing)


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


async def close_within(seconds: float, closing: Sequence[Awaitable[Any]]) -> None:
    """Close links together, waiting at most ``seconds`` for a peer to acknowledge (a
    hung one must not hold up a node that stops)."""
    if not closing:
        return
    _, late = await asyncio.wait([asyncio.ensure_future(c) for c in closing], timeout=seconds)
    for task in late:
        task.cancel()
    if late:
        await asyncio.wait(late)
