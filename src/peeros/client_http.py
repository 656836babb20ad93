"""Finding a peer's local API, and blocking HTTP/1.1 to it on the caller's own thread.

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

import http.client
import json
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from peeros.config import default_data_dir
from peeros.errors import BadRequest, Unavailable
from peeros.net.client import M, error_from, parse
from peeros.protocol import PROTOCOL_HEADER, PROTOCOL_VERSION

#: Seconds a kept-alive connection may sit idle before it is replaced (the peer's aiohttp
#: server closes idle connections after 75 s).
MAX_IDLE = 30.0
#: Idle connections kept for reuse.
KEEP = 8


@dataclass(frozen=True)
class Endpoint:
    url: str
    token: str


def _normalise_url(peer: str) -> str:
    url = peer if "://" in peer else f"http://{peer}"
    return url.rstrip("/")


def resolve_endpoint(
    peer: str | None = None, token: str | None = None, data_dir: str | Path | None = None
) -> Endpoint:
    """Where the local API is and its token, by the documented order of precedence."""
    if peer:
        if not token:
            raise BadRequest("--token is required with --peer (or use --data-dir)")
        return Endpoint(_normalise_url(peer), token)
    directory = Path(data_dir) if data_dir else default_data_dir()
    info_path = directory / "api.json"
    if not info_path.exists() and (directory / "cluster.json").exists():
        # A ``peeros up`` directory: talk to its first peer.
        cluster = json.loads((directory / "cluster.json").read_text())
        if cluster.get("peers"):
            directory = Path(cluster["peers"][0]["data_dir"])
            info_path = directory / "api.json"
    if not info_path.exists():
        raise Unavailable(
            f"no running peer found in {directory} (no api.json); start one with "
            "'peeros peer' or 'peeros up', or pass --peer URL --token T"
        )
    try:
        info = json.loads(info_path.read_text())
        url = info["api_url"]
        secret = token or (directory / "api.token").read_text().strip()
    except (OSError, ValueError, KeyError) as exc:
        raise Unavailable(f"cannot read the peer's address or token in {directory}: {exc}") from exc
    return Endpoint(_normalise_url(url), secret)


class _Conn:
    def __init__(self, host: str, port: int, timeout: float, tls: ssl.SSLContext | None) -> None:
        self.http = (
            http.client.HTTPSConnection(host, port, timeout=timeout, context=tls)
            if tls is not None
            else http.client.HTTPConnection(host, port, timeout=timeout)
        )
        self.http.connect()
        assert self.http.sock is not None
        self.http.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.used = 0
        self.idle_since = time.monotonic()

    def stale(self) -> bool:
        """Idle too long, or readable while idle (the server closed it, or sent junk)."""
        sock = self.http.sock
        if sock is None or time.monotonic() - self.idle_since > MAX_IDLE:
            return True
        poller = select.poll()  # not select(): it fails on descriptors past 1023
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))


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
        self.headers = {
            "Authorization": f"Bearer {token}",
            PROTOCOL_HEADER: str(PROTOCOL_VERSION),
        }
        self._idle: list[_Conn] = []
        self._lock = threading.Lock()

    def _acquire(self, timeout: float) -> _Conn:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return _Conn(self.host, self.port, timeout, self.tls)
            if conn.stale():
                conn.http.close()
                continue
            assert conn.http.sock is not None
            conn.http.sock.settimeout(timeout)
            return conn

    def _release(self, conn: _Conn) -> None:
        conn.idle_since = time.monotonic()
        with self._lock:
            if len(self._idle) < KEEP:
                self._idle.append(conn)
                return
        conn.http.close()

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
        data = encode_body(body)
        headers = self.headers if data is None else {**self.headers, **_JSON}
        for attempt in (1, 2):
            conn: _Conn | None = None
            try:
                conn = self._acquire(timeout or self.timeout)
                reused = conn.used > 0
                conn.http.request(method, self.prefix + path, body=data, headers=headers)
                resp = conn.http.getresponse()
                raw = resp.read()
            except (http.client.HTTPException, OSError) as exc:
                if conn is not None:
                    conn.http.close()
                if attempt == 1 and method == "GET" and conn is not None and reused:
                    continue  # the server closed a kept-alive connection: once more, anew
                raise Unavailable(
                    f"cannot reach the peer's local API at {self.url}: "
                    f"{str(exc) or type(exc).__name__}; is the peer running?"
                ) from exc
            except BaseException:  # interrupted mid-request: the connection is unusable
                if conn is not None:
                    conn.http.close()
                raise
            conn.used += 1
            if resp.will_close:
                conn.http.close()
            else:
                self._release(conn)
            if resp.status >= 400:
                raise error_from(resp.status, resp.reason, raw.decode(errors="replace"))
            return raw
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.http.close()


_JSON = {"Content-Type": "application/json"}


def encode_body(body: Any) -> bytes | None:
    """A request body: None, JSON already encoded (bytes), or a JSON value to encode."""
    if body is None or isinstance(body, bytes):
        return body
    return json.dumps(body).encode()
