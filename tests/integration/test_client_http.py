"""The sync client's blocking transport, against a stdlib HTTP/1.1 server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from peeros.client_http import BlockingHTTP
from peeros.errors import BadRequest, NotFound, PeerOSError, Unauthorized, Unavailable
from tests.conftest import wait_until


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.connections = 0
        self.closed = 0
        self.requests: list[tuple[str, str, Any]] = []
        self.close_after_reply = False

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        self.closed += 1

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def log_message(self, *args: Any) -> None:
        pass

    def reply(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.server.close_after_reply:  # closes without saying so, like an idle timeout
            self.close_connection = True

    def handle_one(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.server.requests.append((self.command, self.path, body))
        if self.headers.get("Authorization") != "Bearer secret":
            err = {"error": {"code": "unauthorized", "message": "wrong API token"}}
            return self.reply(401, json.dumps(err).encode())
        if self.path == "/missing":
            err = {"error": {"code": "not_found", "message": "no task 42 on this peer"}}
            return self.reply(404, json.dumps(err).encode())
        if self.path == "/broken":
            return self.reply(500, b"it broke", "text/plain")
        if self.path == "/html":
            return self.reply(200, b"<html>", "text/html")
        self.reply(200, json.dumps({"echo": body, "path": self.path}).encode())

    do_GET = do_POST = handle_one


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def test_json_requests_reuse_one_kept_alive_connection(server: Server) -> None:
    http = BlockingHTTP(server.url, "secret", 5.0)
    for i in range(5):
        assert http.request("POST", "/v1/tasks", {"n": i}) == {
            "echo": {"n": i},
            "path": "/v1/tasks",
        }
    assert http.request("GET", "/v1/status") == {"echo": None, "path": "/v1/status"}
    assert server.connections == 1
    http.close()


def test_error_bodies_become_the_matching_exceptions(server: Server) -> None:
    http = BlockingHTTP(server.url, "secret", 5.0)
    with pytest.raises(NotFound, match="no task 42 on this peer"):
        http.request("GET", "/missing")
    with pytest.raises(PeerOSError, match="it broke") as info:
        http.request("GET", "/broken")
    assert info.value.status == 500
    with pytest.raises(Unavailable, match="not JSON"):
        http.request("GET", "/html")
    http.close()
    wrong = BlockingHTTP(server.url, "wrong", 5.0)
    with pytest.raises(Unauthorized, match="wrong API token"):
        wrong.request("GET", "/v1/status")
    wrong.close()


def test_a_connection_the_server_closed_is_replaced_and_nothing_is_sent_twice(
    server: Server,
) -> None:
    http = BlockingHTTP(server.url, "secret", 5.0)
    server.close_after_reply = True
    for i in range(4):
        assert http.request("POST", "/v1/tasks", {"n": i})["echo"] == {"n": i}
        wait_until(lambda n=i + 1: server.closed == n)  # closed while idle, before the next
    assert [b for _, _, b in server.requests] == [{"n": i} for i in range(4)]
    assert server.connections == 4
    http.close()


def test_a_peer_that_is_not_running_is_unavailable() -> None:
    srv = Server()
    url = srv.url
    srv.server_close()
    http = BlockingHTTP(url, "secret", 5.0)
    with pytest.raises(Unavailable, match=f"cannot reach the peer's local API at {url}"):
        http.request("GET", "/v1/status")


def test_threads_share_the_client_safely(server: Server) -> None:
    http = BlockingHTTP(server.url, "secret", 5.0)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(20):
                assert http.request("POST", "/x", {"k": k, "i": i})["echo"] == {"k": k, "i": i}
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    http.close()
    assert errors == []
    assert len(server.requests) == 120
    assert server.connections <= 6


# --- the wire format, against a raw socket server ------------------------------------

#: Offset of ``tcpi_data_segs_in`` in Linux's ``struct tcp_info`` (since 4.6).
_DATA_SEGS_IN = 152


class RawServer:
    """Answers each request with the next canned reply; counts the data segments that
    carried the requests, as the kernel saw them."""

    def __init__(self, replies: list[bytes]) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.replies = replies
        self.requests: list[bytes] = []
        self.segments: list[int] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            buf = b""
            for reply in self.replies:
                while b"\r\n\r\n" not in buf:
                    buf += conn.recv(65536)
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buf) < length:
                    buf += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + buf[:length])
                buf = buf[length:]
                info = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
                self.segments.append(struct.unpack_from("I", info, _DATA_SEGS_IN)[0])
                conn.sendall(reply)

    def close(self) -> None:
        self.sock.close()
        self.thread.join(timeout=5)


def _json_reply(body: bytes, extra: str = "") -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def test_each_request_leaves_in_one_segment_headers_and_body_together() -> None:
    # With TCP_NODELAY, headers and body sent apart are two segments: the server wakes
    # and reads twice per request. Sent together, each request is one data segment.
    server = RawServer([_json_reply(b'{"n": %d}' % i) for i in range(3)])
    http = BlockingHTTP(server.url, "secret", 5.0)
    try:
        for i in range(3):
            assert http.request("POST", "/v1/tasks", {"task": "x" * 200, "i": i}) == {"n": i}
        assert server.segments == [1, 2, 3]
        first = server.requests[0]
        assert first.startswith(b"POST /v1/tasks HTTP/1.1\r\n")
        assert b"\r\nAuthorization: Bearer secret\r\n" in first
        assert b"\r\nContent-Type: application/json\r\n" in first
        assert json.loads(first.partition(b"\r\n\r\n")[2]) == {"task": "x" * 200, "i": 0}
    finally:
        http.close()
        server.close()


def test_chunked_and_connection_delimited_replies_are_read_whole() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'4\r\n{"a"\r\n5;ext=1\r\n: [1,\r\n4\r\n 2]}\r\n0\r\nX-Trailer: y\r\n\r\n'
    )
    until_close = b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"b": true}'
    server = RawServer([chunked, _json_reply(b'{"c": 3}'), until_close])
    http = BlockingHTTP(server.url, "secret", 5.0)
    try:
        assert http.request("GET", "/one") == {"a": [1, 2]}
        assert http.request("GET", "/two") == {"c": 3}  # the same connection, in step
        assert len(server.requests) == 2
        assert http.request("GET", "/three") == {"b": True}
        assert len(server.requests) == 3
    finally:
        http.close()
        server.close()


def test_a_reply_that_is_not_http_is_unavailable_and_a_bad_token_is_refused() -> None:
    server = RawServer([b"SSH-2.0-OpenSSH\r\n\r\n"])
    http = BlockingHTTP(server.url, "secret", 5.0)
    try:
        with pytest.raises(Unavailable, match=r"not an HTTP/1\.x reply"):
            http.request("POST", "/v1/tasks", {"n": 1})
    finally:
        http.close()
        server.close()
    with pytest.raises(BadRequest, match="line breaks"):
        BlockingHTTP("http://127.0.0.1:1", "secret\r\nX-Evil: 1", 5.0)


def test_a_path_cannot_smuggle_a_second_request_and_nothing_is_sent() -> None:
    server = RawServer([_json_reply(b"{}")])
    http = BlockingHTTP(server.url, "secret", 5.0)
    try:
        evil = "/v1/tasks/x HTTP/1.1\r\nHost: a\r\n\r\nPOST /v1/sched?"
        for method, path in (("GET", evil), ("GET", "/v1/tasks/a b"), ("GET\r\n", "/x")):
            with pytest.raises(BadRequest, match="not a valid request line"):
                http.request(method, path)
        assert http.request("GET", "/v1/status") == {}  # the first bytes the server saw
        assert server.requests[0].startswith(b"GET /v1/status HTTP/1.1\r\n")
    finally:
        http.close()
        server.close()


def test_interim_replies_are_skipped_and_bad_lengths_are_unavailable() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" + _json_reply(b'{"ok": 1}')
    bad_length = b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}"
    server = RawServer([interim, bad_length])
    http = BlockingHTTP(server.url, "secret", 5.0)
    try:
        assert http.request("POST", "/a", {"n": 1}) == {"ok": 1}
        with pytest.raises(Unavailable, match="bad Content-Length"):
            http.request("POST", "/b", {"n": 2})
    finally:
        http.close()
        server.close()
