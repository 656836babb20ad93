"""``Client.files.get`` on the caller's thread (``peeros.client_fetch``): the guarantees of
the asynchronous path, against a stdlib HTTP/1.1 server that can lie, cut a body short or
fail, and against real peers."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from peeros import Client
from peeros.errors import NotFound, PeerOSError, Unavailable
from peeros.files import saving
from peeros.protocol import BATCH_TYPE, PEER_HEADER, SHA256_HEADER, FileInfo
from tests.conftest import Nodes

MiB = 1 << 20


def head_line(name: str, body: bytes, peer_id: str) -> bytes:
    """A batch's head line for one file (as ``POST /v1/files-batch`` writes it)."""
    info = FileInfo(
        name=name,
        size=len(body),
        sha256=hashlib.sha256(body).hexdigest(),
        modified=0.0,
        peer_id=peer_id,
    )
    return info.model_dump_json().encode() + b"\n"


class FileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.files: dict[str, bytes] = {}
        self.connections = 0
        self.requests = 0
        self.mode = "honest"  # "lying": a wrong SHA-256; "cut": the body ends early
        self.stalled = threading.Event()
        self.release = threading.Event()

    @property
    def peer(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FileServer

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        """A batch (``/v1/files-batch``) whose body is cut off in the second file."""
        self.server.requests += 1
        names = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["names"]
        self.send_response(200)
        self.send_header("Content-Type", BATCH_TYPE)
        self.send_header("Connection", "close")
        self.end_headers()
        for i, name in enumerate(names):
            body = self.server.files[name]
            self.wfile.write(head_line(name, body, "fake-peer"))
            self.wfile.write(body[: len(body) // 2] if i == 1 else body)
            if i == 1:
                break
        self.close_connection = True

    def do_GET(self) -> None:
        self.server.requests += 1
        name = self.path.rsplit("/", 1)[-1]
        body = self.server.files.get(name)
        if body is None:
            err = b'{"error": {"code": "not_found", "message": "no file here"}}'
            self.send_response(404)
            self.send_header("Content-Length", str(len(err)))
            self.end_headers()
            self.wfile.write(err)
            return
        digest = hashlib.sha256(body).hexdigest()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header(SHA256_HEADER, "0" * 64 if self.server.mode == "lying" else digest)
        self.send_header(PEER_HEADER, "fake-peer")
        self.end_headers()
        if self.server.mode == "stall":  # half the body, then nothing until released
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.server.stalled.set()
            self.server.release.wait(30)
            return
        if self.server.mode == "cut":
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[FileServer]:
    srv = FileServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.release.set()
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


@pytest.fixture
def client(server: FileServer) -> Iterator[Client]:
    with Client(peer=server.peer, token="t") as c:
        yield c


def test_gets_run_on_the_callers_thread_over_one_kept_alive_connection(
    server: FileServer, client: Client, tmp_path: Path
) -> None:
    server.files = {"small": os.urandom(1000), "big": os.urandom(3 * MiB + 5)}
    calls: list[tuple[str, int, int, int]] = []

    def progress(stage: str, done: int, total: int) -> None:
        calls.append((stage, done, total, threading.get_ident()))

    for name in ("small", "big", "small", "big"):
        got = client.files.get(name, tmp_path, progress=progress)
        body = server.files[name]
        assert (tmp_path / name).read_bytes() == body
        assert (got.size, got.sha256, got.peer_id) == (
            len(body),
            hashlib.sha256(body).hexdigest(),
            "fake-peer",
        )
    assert (server.requests, server.connections) == (4, 1)
    assert {ident for *_, ident in calls} == {threading.get_ident()}
    assert {stage for stage, *_ in calls} == {"receiving"}
    assert calls[-1][1:3] == (3 * MiB + 5, 3 * MiB + 5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big", "small"]  # no temp files


@pytest.mark.parametrize("size", [2 * MiB, 2 * MiB + 8192, 3 * MiB + 5, 3 * MiB + 4095])
def test_big_downloads_are_written_past_the_page_cache_and_whole(
    server: FileServer,
    client: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    size: int,
) -> None:
    """From DIRECT_MIN on, whole 4 KiB blocks go out with O_DIRECT; a tail that is not a
    whole block is written through the page cache; every byte arrives either way."""
    monkeypatch.setattr(saving, "DIRECT_MIN", 2 * MiB)
    seen: list[tuple[int, bool]] = []
    write_chunk = saving.SaveFile._write_chunk

    def spy(self: saving.SaveFile, chunk: bytes | memoryview) -> None:
        write_chunk(self, chunk)
        flags = fcntl.fcntl(self._file.fileno(), fcntl.F_GETFL)
        seen.append((len(chunk), bool(flags & os.O_DIRECT)))

    monkeypatch.setattr(saving.SaveFile, "_write_chunk", spy)
    server.files = {"big": os.urandom(size), "below": os.urandom(2 * MiB - 1)}
    assert client.files.get("big", tmp_path).size == size
    assert (tmp_path / "big").read_bytes() == server.files["big"]
    tail = size % MiB
    whole = [(MiB, True)] * (size // MiB)
    assert seen == whole + ([(tail, tail % 4096 == 0)] if tail else [])
    seen.clear()
    client.files.get("below", tmp_path)  # under DIRECT_MIN: the page cache, as before
    assert (tmp_path / "below").read_bytes() == server.files["below"]
    assert seen == [(MiB, False), (MiB - 1, False)]


@pytest.mark.parametrize("size", [1000, 3 * MiB])
def test_bytes_that_do_not_match_the_announced_hash_are_not_saved(
    server: FileServer, client: Client, tmp_path: Path, size: int
) -> None:
    server.files = {"x": os.urandom(size)}
    server.mode = "lying"
    (tmp_path / "x").write_bytes(b"old")
    with pytest.raises(PeerOSError, match="do not match the peer's SHA-256"):
        client.files.get("x", tmp_path / "x")
    assert [p.name for p in tmp_path.iterdir()] == ["x"]
    assert (tmp_path / "x").read_bytes() == b"old"  # the old file is left as it was


@pytest.mark.parametrize("size", [1000, 3 * MiB])
def test_a_body_cut_short_is_unavailable_and_leaves_nothing(
    server: FileServer, client: Client, tmp_path: Path, size: int
) -> None:
    server.files = {"x": os.urandom(size)}
    server.mode = "cut"
    with pytest.raises(Unavailable, match="cut off"):
        client.files.get("x", tmp_path / "out")
    assert list(tmp_path.iterdir()) == []
    server.mode = "honest"  # and the next download works, on a new connection
    assert client.files.get("x", tmp_path / "out").size == size
    assert server.connections == 2


@pytest.mark.parametrize("size", [1000, 3 * MiB])
def test_a_batch_cut_short_saves_none_of_its_files(
    server: FileServer, client: Client, tmp_path: Path, size: int
) -> None:
    server.files = {"a": os.urandom(size), "b": os.urandom(size), "c": b"c"}
    with pytest.raises(Unavailable, match="batch download failed at 'b'"):
        client.files.get_many(["a", "b", "c"], tmp_path)
    assert list(tmp_path.iterdir()) == []  # not even "a", which arrived whole


def test_a_download_stopped_by_its_caller_leaves_nothing_and_the_client_usable(
    server: FileServer, client: Client, tmp_path: Path
) -> None:
    server.files = {"big": os.urandom(5 * MiB)}

    def stop(stage: str, done: int, total: int) -> None:
        if done >= 2 * MiB:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        client.files.get("big", tmp_path / "out", progress=stop)
    assert list(tmp_path.iterdir()) == []
    assert client.files.get("big", tmp_path / "out").size == 5 * MiB  # on a new connection
    assert server.connections == 2


@pytest.mark.parametrize("size", [1000, 3 * MiB])
def test_a_client_killed_mid_download_leaves_nothing_in_the_directory(
    server: FileServer, tmp_path: Path, size: int
) -> None:
    """The file being written has no name until it is complete and verified (O_TMPFILE):
    not even a temp file survives a kill -9."""
    server.files = {"f": os.urandom(size)}
    server.mode = "stall"
    out = tmp_path / "out"
    out.mkdir()
    code = (
        "import sys; from peeros import Client; "
        "Client(peer=sys.argv[1], token='t').files.get('f', sys.argv[2])"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, server.peer, str(out)])
    try:
        assert server.stalled.wait(30)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert list(out.iterdir()) == []


def test_an_error_status_is_the_matching_exception_and_leaves_nothing(
    server: FileServer, client: Client, tmp_path: Path
) -> None:
    with pytest.raises(NotFound, match="no file here"):
        client.files.get("nope", tmp_path / "out")
    assert list(tmp_path.iterdir()) == []
    server.files = {"x": b"after"}  # the connection was kept: the error body was read
    assert client.files.get("x", tmp_path / "out").size == 5
    assert server.connections == 1


def test_many_small_gets_from_real_peers_local_and_relayed(nodes: Nodes, tmp_path: Path) -> None:
    cluster = nodes.cluster(2)
    bodies = {f"f{i}": os.urandom(i * 97) for i in range(20)}
    with Client(data_dir=cluster.peers[0].data_dir) as client:
        remote = client.files.on(cluster.peers[1].info["peer_id"])
        for name, body in bodies.items():
            (tmp_path / "src").mkdir(exist_ok=True)
            (tmp_path / "src" / name).write_bytes(body)
            client.files.put(name, tmp_path / "src" / name)
            remote.put(name, tmp_path / "src" / name)
        for where, files in (("local", client.files), ("remote", remote)):
            out = tmp_path / where
            out.mkdir()
            for name in bodies:
                assert files.get(name, out).sha256 == hashlib.sha256(bodies[name]).hexdigest()
            assert {p.name: p.read_bytes() for p in out.iterdir()} == bodies
        idle = client._http._idle
        assert len(idle) == 1 and idle[0].used >= 40  # every get reused one connection


def test_a_chunked_batch_cut_into_odd_pieces_is_read_exactly(tmp_path: Path) -> None:
    """Chunk boundaries anywhere (inside a head line, inside a file, between them) and a
    trailer: every byte lands where it belongs and the connection stays reusable."""
    bodies = {"one": os.urandom(1000), "two": b"", "three": os.urandom(70_000)}
    payload = b""
    for name, body in bodies.items():
        payload += head_line(name, body, "odd") + body
    chunks, pos, sizes = [], 0, [1, 2, 3, 7, 64, 1, 5000, 13]
    while pos < len(payload):
        size = sizes[len(chunks) % len(sizes)]
        chunks.append(payload[pos : pos + size])
        pos += size
    reply = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks)
    head = b"HTTP/1.1 200 OK\r\nContent-Type: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    listener = socket.create_server(("127.0.0.1", 0))
    served: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            length = int(data.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            while len(data.split(b"\r\n\r\n", 1)[1]) < length:
                data += conn.recv(65536)
            served.append(data)
            conn.sendall(head + reply + b"0\r\nX-Trailer: yes\r\n\r\n")
            conn.recv(1)  # until the client closes

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with Client(peer=f"127.0.0.1:{listener.getsockname()[1]}", token="t") as client:
            infos = client.files.get_many(list(bodies), tmp_path)
            assert [i.name for i in infos] == list(bodies)
            assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == bodies
            assert len(client._http._idle) == 1  # read to its end: kept for reuse
    finally:
        listener.close()
        thread.join(timeout=5)
    assert json.loads(served[0].split(b"\r\n\r\n", 1)[1]) == {"names": list(bodies)}
