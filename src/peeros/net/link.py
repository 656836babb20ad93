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
from collections.abc import Awaitable
from typing import Any, NamedTuple, TypeVar

import aiohttp
from pydantic import BaseModel

from peeros.eager import raising
from peeros.errors import PayloadTooLarge, PeerOSError, Unavailable, Unreachable, from_wire
from peeros.net.client import ClusterClient, parse_json
from peeros.net.link_server import CLOSE_WAIT, HEARTBEAT, LINK_PATH, close_within, send_now
from peeros.protocol import Body

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

#: Replies put the id first, so that a big body is handed on as text, parsed once.
_REPLY = re.compile(r'\{"id": (\d{1,18}), "body": ')

#: Seconds a node without the route is called over HTTP before a link is tried again.
HTTP_ONLY_FOR = 60.0


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


#: A reply: ``(the body as JSON text, None)`` or ``(None, the error)``.
Outcome = tuple[str | None, dict[str, Any] | None]
#: Call frames up to this size are written at once (a lone task's is ~1 KiB); bigger
#: ones are written when awaited, with the transport's flow control.
SEND_NOW_MAX = 64 << 10


class _Call(NamedTuple):
    call_id: int
    future: asyncio.Future[Outcome]
    #: The frame, for a big one not written yet.
    unsent: str | None


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

    def start(self, op: str, body: str) -> _Call:
        """Register a call and write its frame now (a big one is written when the call
        is awaited, as the transport's flow control allows). Raises
        :class:`~peeros.errors.Unreachable` if the link is closing: nothing went out."""
        call_id = next(self.ids)
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        frame = f'{{"id": {call_id}, "op": "{op}", "body": {body}}}'
        call = _Call(call_id, future, frame if len(frame) > SEND_NOW_MAX else None)
        self.pending[call_id] = future
        if call.unsent is None:
            try:
                send_now(self.ws, frame)
            except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
                self.pending.pop(call_id, None)
                raise self._failure(exc) from exc
        return call

    async def finish(self, call: _Call, timeout: float | None) -> Outcome:
        """The reply to a started call."""
        try:
            if call.unsent is not None:
                try:
                    await self.ws.send_str(call.unsent)
                except asyncio.CancelledError:
                    # Writers of one connection share its drain future: another sender's
                    # cancellation reaches us too. Only a cancellation of this task does.
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        raise
                    raise Unavailable(f"sending to {self.address} was interrupted") from None
            async with asyncio.timeout(timeout):
                return await call.future
        except TimeoutError as exc:
            raise Unavailable(f"{self.address} did not answer within {timeout:g} s") from exc
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            raise self._failure(exc) from exc
        finally:
            self.pending.pop(call.call_id, None)

    def _failure(self, exc: Exception) -> PeerOSError:
        if isinstance(exc, ConnectionResetError):  # the link was closing: nothing went out
            return Unreachable(f"the link to {self.address} closed: {exc}")
        return Unavailable(f"the link to {self.address} failed: {exc!r}")

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
        return await self._finish(link, link.start(op, self._text(op, body)), response, timeout)

    def start(
        self, address: str, op: str, body: Body, response: type[M], timeout: float | None
    ) -> Awaitable[M]:
        """:meth:`call`, its frame written before this returns when the link to
        ``address`` is open (else when the result is awaited, as by :meth:`call`): a
        caller can send first and do its own work before it waits."""
        link = self._links.get(address)
        if link is None or link.closed:
            return self.call(address, op, body, response, timeout)
        try:
            started = link.start(op, self._text(op, body))
        except PeerOSError as exc:
            return raising(exc)
        return self._finish(link, started, response, timeout)

    def _text(self, op: str, body: Body) -> str:
        text = body.model_dump_json()
        if len(text) > self.max_message:
            raise PayloadTooLarge(
                f"a {op} call of {len(text)} bytes is over the {self.max_message} bytes a "
                "node accepts"
            )
        return text

    async def _finish(
        self, link: _Link, call: _Call, response: type[M], timeout: float | None
    ) -> M:
        address = link.address
        reply, error = await link.finish(call, self.client.timeout if timeout is None else timeout)
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
            await close_within(CLOSE_WAIT, [self._session.close()])
            self._session = None
        await close_within(CLOSE_WAIT, [link.close() for link in links])
