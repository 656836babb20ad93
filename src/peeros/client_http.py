"""Blocking HTTP/1.1 to a peer's local API on the caller's own thread (where that API is:
:mod:`peeros.client_endpoint`).

The synchronous :class:`~peeros.client.Client` sends its small JSON calls (tasks,
status) through here instead of handing each one to its event-loop thread: a thread hop
each way costs more than the request itself on loopback. Connections are kept alive, with
TCP_NODELAY (Nagle plus delayed ACK would stall each request ~40 ms), in a small pool so
that several threads may call at once. Errors are the ones :class:`AsyncClient` raises:
the server's JSON error body becomes the matching :class:`~peeros.errors.PeerOSError`,
a peer that cannot be reached is :class:`~peeros.errors.Unavailable`.

A request is never sent twice, except a GET on a reused connection that the server had
closed (an idle keep-alive connection is closed by the server after a while: connections
idle for longer than :data:`MAX_IDLE`, or already closed by the server, are replaced
before use).
"""

from __future__ import annotations

import contextlib
import json
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from peeros.client_body import Reply
from peeros.errors import BadRequest, Unavailable
from peeros.net.client import M, error_from, parse
from peeros.protocol import PROTOCOL_HEADER, PROTOCOL_VERSION

#: Seconds a kept-alive connection may sit idle before it is replaced (the peer's aiohttp
#: server closes idle connections after 75 s).
MAX_IDLE = 30.0
#: Idle connections kept for reuse.
KEEP = 8


#: Longest response head (status line and headers) accepted.
MAX_HEAD = 64 << 10
#: What a method and a path may hold: visible ASCII, no spaces or control characters.
_TOKEN = re.compile(r"[A-Z]{1,16}")
_PATH = re.compile(r"/[!-~]*")


class _Conn:
    """One kept-alive HTTP/1.1 connection: each request leaves in a single send (headers
    and body together: with TCP_NODELAY, http.client's two sends cost the server a second
    wake-up and read per request), and the reply is parsed without the email package."""

    def __init__(self, host: str, port: int, timeout: float, tls: ssl.SSLContext | None) -> None:
        sock = socket.create_connection((host, port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls is not None:
                sock = tls.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.buf = bytearray()  # received, not yet parsed
        self.used = 0
        self.idle_since = time.monotonic()

    def close(self) -> None:
        self.sock.close()

    def stale(self) -> bool:
        """Idle too long, or readable while idle (the server closed it, or sent junk)."""
        if self.buf or time.monotonic() - self.idle_since > MAX_IDLE:
            return True
        poller = select.poll()  # not select(): it fails on descriptors past 1023
        poller.register(self.sock, select.POLLIN)
        return bool(poller.poll(0))

    def _fill(self) -> None:
        data = self.sock.recv(1 << 16)
        if not data:
            raise ConnectionError("the connection closed before the reply was complete")
        self.buf += data

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            if len(self.buf) > MAX_HEAD:
                raise ConnectionError("an over-long line in the reply")
            self._fill()
        return self._take(end + 2)[:-2]

    def exchange(self, request: bytes) -> tuple[int, str, bytes, bool]:
        """Send one request; ``(status, reason, body, the server will close)``."""
        self.sock.sendall(request)
        while True:
            reply = self._reply()
            if reply[0] >= 200:  # (1xx replies are interim: the final one follows)
                return reply

    def head(self) -> tuple[int, str, dict[str, str], bool]:
        """The next reply's status, reason, headers (lower-case names) and whether the
        server closes the connection after it; the body is left in the buffer."""
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            if len(self.buf) > MAX_HEAD:
                raise ConnectionError(f"a reply head over {MAX_HEAD} bytes")
            self._fill()
        status_line, *lines = self._take(end + 4)[:-4].decode("latin-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise ConnectionError(f"not an HTTP/1.x reply: {status_line[:80]!r}")
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        will_close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
        return int(code), reason, headers, will_close

    def _reply(self) -> tuple[int, str, bytes, bool]:
        status, reason, headers, will_close = self.head()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._chunked()
        elif "content-length" in headers:
            length = headers["content-length"]
            if not length.isdigit():
                raise ConnectionError(f"a bad Content-Length in the reply: {length[:40]!r}")
            body = self._take(int(length))
        elif status in (204, 304) or status < 200:
            body = b""
        else:  # delimited by the end of the connection
            while True:
                try:
                    self._fill()
                except ConnectionError:
                    break
            body, will_close = bytes(self.buf), True
            self.buf.clear()
        return status, reason, body, will_close

    def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            text = self._line().split(b";")[0].strip()
            if not text or any(c not in b"0123456789abcdefABCDEF" for c in text):
                raise ConnectionError(f"a bad chunk size in the reply: {text[:40]!r}")
            size = int(text, 16)
            if size == 0:
                while self._line():  # trailers, up to the empty line
                    pass
                return b"".join(parts)
            parts.append(self._take(size))
            self._take(2)


class BlockingHTTP:
    """JSON requests to one local API from any thread; thread-safe."""

    def __init__(self, url: str, token: str, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the local API's URL must be http(s)://HOST:PORT, got {url!r}")
        self.url = url
        self.host = parts.hostname
        self.tls = ssl.create_default_context() if parts.scheme == "https" else None
        self.port = parts.port or (443 if self.tls else 80)
        self.timeout = timeout
        self.prefix = parts.path.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 literal
        default_port = 443 if self.tls else 80
        self.host_line = f"Host: {host}" + (f":{self.port}" if self.port != default_port else "")
        if any(c in token for c in "\r\n\0"):
            raise BadRequest("an API token cannot contain line breaks or NUL")
        self.header_lines = (
            f"Authorization: Bearer {token}",
            f"{PROTOCOL_HEADER}: {PROTOCOL_VERSION}",
            "Accept-Encoding: identity",
        )
        self._idle: list[_Conn] = []
        self._lock = threading.Lock()

    def _acquire(self, timeout: float) -> _Conn:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return _Conn(self.host, self.port, timeout, self.tls)
            if conn.stale():
                conn.close()
                continue
            conn.sock.settimeout(timeout)
            return conn

    def _release(self, conn: _Conn) -> None:
        conn.idle_since = time.monotonic()
        with self._lock:
            if len(self._idle) < KEEP:
                self._idle.append(conn)
                return
        conn.close()

    def _encode(self, method: str, path: str, data: bytes | None) -> bytes:
        if not _TOKEN.fullmatch(method) or not _PATH.fullmatch(path):
            # (a task id from untrusted input must not smuggle a second request in)
            raise BadRequest(f"not a valid request line: {method!r} {path!r}")
        head = [f"{method} {self.prefix}{path} HTTP/1.1", self.host_line, *self.header_lines]
        if data is not None:
            head.append("Content-Type: application/json")
        if data is not None or method in ("POST", "PUT", "PATCH"):
            head.append(f"Content-Length: {len(data or b'')}")
        encoded = ("\r\n".join(head) + "\r\n\r\n").encode("ascii")
        return encoded + data if data else encoded

    def request(
        self, method: str, path: str, body: Any = None, timeout: float | None = None
    ) -> Any:
        """Send one request; the decoded JSON reply, or the error it stands for."""
        return self._decode(self.request_raw(method, path, body, timeout))

    def request_model(
        self, cls: type[M], method: str, path: str, body: Any = None, timeout: float | None = None
    ) -> M:
        """Send one request; the reply parsed as ``cls`` (see :func:`parse_json`)."""
        raw = self.request_raw(method, path, body, timeout)
        try:
            return cls.model_validate_json(raw)
        except ValidationError:
            return parse(cls, self._decode(raw), self.url)

    def _decode(self, raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except ValueError as exc:  # as AsyncClient: an unexpected reply is Unavailable
            raise Unavailable(
                f"cannot reach the peer's local API at {self.url}: the reply is not "
                f"JSON ({exc}); is the peer running?"
            ) from exc

    def request_raw(
        self, method: str, path: str, body: Any = None, timeout: float | None = None
    ) -> bytes:
        """Send one request (``body``: a JSON value, or JSON already encoded as bytes);
        the raw reply, or the error it stands for."""
        message = self._encode(method, path, encode_body(body))
        for attempt in (1, 2):
            conn: _Conn | None = None
            try:
                conn = self._acquire(timeout or self.timeout)
                reused = conn.used > 0
                status, reason, raw, will_close = conn.exchange(message)
            except OSError as exc:
                if conn is not None:
                    conn.close()
                closed = conn is not None and reused and not isinstance(exc, TimeoutError)
                if attempt == 1 and method == "GET" and closed:
                    continue  # the server closed a kept-alive connection: once more, anew
                raise Unavailable(
                    f"cannot reach the peer's local API at {self.url}: "
                    f"{str(exc) or type(exc).__name__}; is the peer running?"
                ) from exc
            except BaseException:  # interrupted mid-request: the connection is unusable
                if conn is not None:
                    conn.close()
                raise
            conn.used += 1
            if will_close:
                conn.close()
            else:
                self._release(conn)
            if status >= 400:
                raise error_from(status, reason, raw.decode(errors="replace"))
            return raw
        raise AssertionError("unreachable")

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        path: str,
        body: Any = None,
        timeout: float | None = None,
        idempotent: bool = False,
    ) -> Iterator[Reply]:
        """A reply whose body the caller reads in pieces (:class:`~peeros.client_body.Reply`);
        an error status raises as :meth:`request` does. ``body`` is sent as JSON;
        ``idempotent`` lets a request other than a GET be sent again on a fresh connection
        if a kept-alive one turns out closed. ``timeout`` bounds each wait for bytes, not
        the whole transfer. The connection is kept for the next request only if the body
        was read to its end; errors while reading it are the caller's."""
        data = None if body is None else json.dumps(body).encode()
        message = self._encode(method, path, data)
        retry = idempotent or method == "GET"
        for attempt in (1, 2):
            conn: _Conn | None = None
            try:
                conn = self._acquire(timeout or self.timeout)
                reused = conn.used > 0
                conn.sock.sendall(message)
                while (head := conn.head())[0] < 200:  # (1xx replies are interim)
                    pass
                reply = Reply(conn, *head)
                break
            except OSError as exc:
                if conn is not None:
                    conn.close()
                closed = conn is not None and reused and not isinstance(exc, TimeoutError)
                if attempt == 1 and retry and closed:
                    continue  # the server closed a kept-alive connection: once more, anew
                raise self._unavailable(exc) from exc
            except BaseException:
                if conn is not None:
                    conn.close()
                raise
        else:
            raise AssertionError("unreachable")
        try:
            if reply.status >= 400:
                try:
                    raw = reply.drain(MAX_HEAD)
                except OSError as exc:
                    raise self._unavailable(exc) from exc
                raise error_from(reply.status, reply.reason, raw.decode(errors="replace"))
            yield reply
        finally:
            conn.used += 1
            if reply.done and not reply.will_close:
                self._release(conn)
            else:
                conn.close()

    def _unavailable(self, exc: BaseException) -> Unavailable:
        return Unavailable(
            f"cannot reach the peer's local API at {self.url}: "
            f"{str(exc) or type(exc).__name__}; is the peer running?"
        )

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def encode_body(body: Any) -> bytes | None:
    """A request body: None, JSON already encoded (bytes), or a JSON value to encode."""
    if body is None or isinstance(body, bytes):
        return body
    return json.dumps(body).encode()
