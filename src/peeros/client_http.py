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

import contextlib
import http.client
import json
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from peeros.config import default_data_dir
from peeros.errors import BadRequest, Unavailable
from peeros.net.client import error_from
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

    def _send(
        self,
        method: str,
        path: str,
        data: bytes | None,
        headers: dict[str, str],
        timeout: float,
        retry: bool,
    ) -> tuple[_Conn, http.client.HTTPResponse]:
        """Send one request and read the response head; the body is the caller's to read."""
        for attempt in (1, 2):
            conn: _Conn | None = None
            try:
                conn = self._acquire(timeout)
                reused = conn.used > 0
                conn.http.request(method, self.prefix + path, body=data, headers=headers)
                return conn, conn.http.getresponse()
            except (http.client.HTTPException, OSError) as exc:
                if conn is not None:
                    conn.http.close()
                if attempt == 1 and retry and conn is not None and reused:
                    continue  # the server closed a kept-alive connection: once more, anew
                raise self._unavailable(exc) from exc
            except BaseException:  # interrupted mid-request: the connection is unusable
                if conn is not None:
                    conn.http.close()
                raise
        raise AssertionError("unreachable")

    def _finish(self, conn: _Conn, resp: http.client.HTTPResponse) -> None:
        """Keep ``conn`` for reuse if its response was read to the end, else close it."""
        conn.used += 1
        if resp.isclosed() and not resp.will_close:
            self._release(conn)
        else:
            conn.http.close()

    def _unavailable(self, exc: BaseException) -> Unavailable:
        return Unavailable(
            f"cannot reach the peer's local API at {self.url}: "
            f"{str(exc) or type(exc).__name__}; is the peer running?"
        )

    def request(
        self, method: str, path: str, body: Any = None, timeout: float | None = None
    ) -> Any:
        """Send one request; the decoded JSON reply, or the error it stands for."""
        data = None if body is None else json.dumps(body).encode()
        headers = self.headers if data is None else {**self.headers, **_JSON}
        conn, resp = self._send(
            method, path, data, headers, timeout or self.timeout, method == "GET"
        )
        try:
            raw = resp.read()
        except (http.client.HTTPException, OSError) as exc:
            conn.http.close()
            raise self._unavailable(exc) from exc
        except BaseException:
            conn.http.close()
            raise
        self._finish(conn, resp)
        if resp.status >= 400:
            raise error_from(resp.status, resp.reason, raw.decode(errors="replace"))
        try:
            return json.loads(raw)
        except ValueError as exc:  # as AsyncClient: an unexpected reply is Unavailable
            raise Unavailable(
                f"cannot reach the peer's local API at {self.url}: the reply is not "
                f"JSON ({exc}); is the peer running?"
            ) from exc

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        path: str,
        body: Any = None,
        timeout: float | None = None,
        idempotent: bool = False,
    ) -> Iterator[tuple[http.client.HTTPResponse, socket.socket | None]]:
        """A response whose body the caller reads, and its socket (``None`` once the
        response owns it: a server that closes after this reply); an error status raises
        as :meth:`request` does. ``body`` is sent as JSON; ``idempotent`` lets a request
        other than a GET be sent again on a fresh connection if a kept-alive one turns
        out closed. ``timeout`` bounds each wait for bytes, not the whole transfer. The
        connection is kept for reuse only if the response was closed (read to its end,
        or closed by the caller after reading the body from the socket itself); errors
        while reading it are the caller's."""
        data = None if body is None else json.dumps(body).encode()
        headers = self.headers if data is None else {**self.headers, **_JSON}
        conn, resp = self._send(
            method, path, data, headers, timeout or self.timeout, idempotent or method == "GET"
        )
        try:
            if resp.status >= 400:
                try:
                    raw = resp.read()
                except (http.client.HTTPException, OSError) as exc:
                    raise self._unavailable(exc) from exc
                raise error_from(resp.status, resp.reason, raw.decode(errors="replace"))
            yield resp, conn.http.sock
        finally:
            self._finish(conn, resp)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.http.close()


_JSON = {"Content-Type": "application/json"}
