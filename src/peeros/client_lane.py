"""The local lane: the blocking client's task submissions as frames on one WebSocket.

A task submitted over HTTP costs the peer a request object, routing, three middlewares
and a response with headers, and the client a request line, headers and a reply head to
parse: about a third of the client's hop to its peer, which a remote task's round trip
pays twice. The lane is opened once per connection (``GET /v1/lane``: the upgrade
request carries the bearer token and passes the same middlewares as any request, so a
wrong token is refused before the upgrade) and then carries the frames of
:mod:`peeros.net.link`: ``{"id": N, "op": "submit", "body": {...}}`` answered by
``{"id": N, "body": {...}}`` or ``{"id": N, "error": {"status", "code", "message"}}``.

One call at a time per connection (a small pool serves several threads). A call is
never sent twice: a lane that breaks mid-call is :class:`~peeros.errors.Unavailable`
(the tasks may have been queued), as over HTTP. A peer without the route (an older
version) is called over HTTP instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import struct
import threading
import time

from peeros.client_http import KEEP, BlockingHTTP, _Conn
from peeros.errors import PeerOSError, Unavailable, from_wire
from peeros.net.client import error_from
from peeros.net.link_server import LANE_PATH

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_REPLY = re.compile(rb'\{"id": (\d{1,18}), "body": ')
#: Longest reply frame accepted (a batch's results).
MAX_FRAME = 1 << 30
_TEXT, _CLOSE, _PING, _PONG, _CONT = 0x1, 0x8, 0x9, 0xA, 0x0


class NoLane(Exception):
    """The peer has no lane (404 on the upgrade): use HTTP."""


def frame(opcode: int, payload: bytes) -> bytes:
    """One final client frame, masked as RFC 6455 requires of a client."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    mask = os.urandom(4)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "little")
    masked = (int.from_bytes(payload, "little") ^ key).to_bytes(n, "little")
    return head + mask + masked


class _LaneConn:
    """An upgraded connection: calls go out as frames, replies come back as frames."""

    def __init__(self, http: BlockingHTTP, timeout: float) -> None:
        self.conn = _Conn(http.host, http.port, timeout, http.tls)
        self.ids = 0
        try:
            self._upgrade(http)
        except BaseException:
            self.conn.close()
            raise

    def _upgrade(self, http: BlockingHTTP) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        head = [
            f"GET {http.prefix}{LANE_PATH} HTTP/1.1",
            http.host_line,
            *http.header_lines,
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        self.conn.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("ascii"))
        status, reason, headers, _ = self.conn.head()
        if status == 101:
            digest = hashlib.sha1(key.encode() + _GUID, usedforsecurity=False).digest()
            accept = base64.b64encode(digest).decode()  # (RFC 6455's SHA-1, not security)
            if headers.get("sec-websocket-accept") != accept:
                raise ConnectionError("the peer answered the lane upgrade wrongly")
            return
        length = headers.get("content-length", "0")
        body = self.conn._take(int(length)) if length.isdigit() else b""
        if status == 404:
            raise NoLane()
        raise error_from(status, reason, body.decode(errors="replace"))

    def call(self, op: str, body: bytes) -> bytes:
        """Send one call; its reply body (JSON), or the error it stands for."""
        self.ids += 1
        call_id = self.ids
        prefix = f'{{"id": {call_id}, "op": "{op}", "body": '.encode()
        self.conn.sock.sendall(frame(_TEXT, prefix + body + b"}"))
        while True:
            text = self._message()
            m = _REPLY.match(text)
            if m and int(m[1]) == call_id and text.endswith(b"}"):
                return text[m.end() : -1]
            try:
                reply = json.loads(text)
                if not isinstance(reply, dict) or reply.get("id") != call_id:
                    continue  # (a reply to no call of ours: dropped, as the link does)
                error = reply.get("error")
                if isinstance(error, dict):
                    status = int(error.get("status", 500))
                    raise from_wire(status, error.get("code"), str(error.get("message")))
                if "body" not in reply:
                    raise ValueError("a reply without a body")
            except (ValueError, TypeError) as exc:
                raise ConnectionError(f"a malformed lane frame: {exc}") from None
            return json.dumps(reply["body"]).encode()

    def _message(self) -> bytes:
        """The next whole text message; pings are answered, a close ends the lane."""
        parts: list[bytes] = []
        while True:
            b0, b1 = self.conn._take(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if b1 & 0x80:
                raise ConnectionError("the peer sent a masked frame")
            if n == 126:
                (n,) = struct.unpack("!H", self.conn._take(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", self.conn._take(8))
            if n > MAX_FRAME:
                raise ConnectionError(f"a lane frame of {n} bytes")
            payload = self.conn._take(n)
            if opcode == _PING:
                self.conn.sock.sendall(frame(_PONG, payload))
            elif opcode == _CLOSE:
                raise ConnectionError("the peer closed the lane")
            elif opcode in (_TEXT, _CONT):
                parts.append(payload)
                if b0 & 0x80:
                    return b"".join(parts)
            # (pongs and other frames are ignored)

    def close(self) -> None:
        self.conn.close()


class BlockingLane:
    """Calls over the lane from any thread; thread-safe. :meth:`call` raises
    :class:`NoLane` when the peer has none."""

    def __init__(self, http: BlockingHTTP) -> None:
        self.http = http
        self._idle: list[_LaneConn] = []
        self._lock = threading.Lock()
        self.missing = False

    def call(self, op: str, body: bytes, timeout: float | None = None) -> bytes:
        if self.missing:
            raise NoLane()
        wait = timeout or self.http.timeout
        lane: _LaneConn | None = None
        try:
            with self._lock:
                lane = self._idle.pop() if self._idle else None
            if lane is not None and lane.conn.stale():
                lane.close()
                lane = None  # (never back in the pool, whatever happens next)
            if lane is None:
                lane = _LaneConn(self.http, wait)
            lane.conn.sock.settimeout(wait)
            reply = lane.call(op, body)
        except NoLane:
            self.missing = True
            raise
        except OSError as exc:  # never sent again: the tasks may have been queued
            if lane is not None:
                lane.close()
            raise Unavailable(
                f"the lane to the peer's local API at {self.http.url} failed: "
                f"{str(exc) or type(exc).__name__}; is the peer running?"
            ) from exc
        except PeerOSError:
            self._release(lane)
            raise
        except BaseException:  # interrupted mid-call: the lane is unusable
            if lane is not None:
                lane.close()
            raise
        self._release(lane)
        return reply

    def _release(self, lane: _LaneConn | None) -> None:
        if lane is None:
            return
        lane.conn.idle_since = time.monotonic()
        with self._lock:
            if len(self._idle) < KEEP:
                self._idle.append(lane)
                return
        lane.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for lane in idle:
            lane.close()
