"""The sync client's blocking transport, against a stdlib HTTP/1.1 server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from peeros.client_http import BlockingHTTP
from peeros.errors import NotFound, PeerOSError, Unauthorized, Unavailable
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
