"""Files on a peer: real peers, real sockets, real disks; bytes and hashes compared."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from peeros import AsyncClient, Client
from peeros.errors import BadRequest, NotFound, PayloadTooLarge, PeerOSError, Unavailable
from peeros.launcher import LocalCluster, NodeProcess
from peeros.protocol import SHA256_HEADER
from tests.conftest import FAST_PEER, Nodes, wait_until

MiB = 1 << 20


@dataclass
class Setup:
    cluster: LocalCluster
    small: NodeProcess  # a peer started with --max-file-mb 1
    client: Client  # talks to peer 1
    tmp: Path

    @property
    def local(self) -> NodeProcess:
        return self.cluster.peers[0]

    @property
    def remote(self) -> NodeProcess:
        return self.cluster.peers[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("files")
    nodes = Nodes(root)
    try:
        cluster = nodes.cluster(2)
        assert cluster.tracker is not None
        small = nodes.peer(cluster.tracker, "small", extra=[*FAST_PEER, "--max-file-mb", "1"])
        with Client(data_dir=cluster.peers[0].data_dir) as client:
            wait_until(lambda: small.info["peer_id"] in {p.peer_id for p in client.peers()})
            yield Setup(cluster, small, client, root / "work")
    finally:
        nodes.stop_all()


def make_file(path: Path, size: int) -> str:
    """Write ``size`` pseudo-random bytes (distinct per MiB) and return their SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    block = os.urandom(MiB)
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for i, start in enumerate(range(0, size, MiB)):
            chunk = (i.to_bytes(8, "big") + block)[: min(MiB, size - start)]
            f.write(chunk)
            h.update(chunk)
    return h.hexdigest()


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            h.update(chunk)
    return h.hexdigest()


def storage(node: NodeProcess) -> Path:
    return node.data_dir / "files"


def partials(node: NodeProcess) -> list[str]:
    return [p.name for p in storage(node).iterdir() if p.name.startswith(".part-")]


def peak_rss(node: NodeProcess) -> int:
    """The process's peak resident set (VmHWM), in bytes."""
    for line in Path(f"/proc/{node.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def api(node: NodeProcess) -> tuple[str, int, dict[str, str]]:
    url = urlsplit(node.info["api_url"])
    token = (node.data_dir / "api.token").read_text().strip()
    assert url.hostname and url.port
    return url.hostname, url.port, {"Authorization": f"Bearer {token}"}


def raw(
    node: NodeProcess,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One plain HTTP request to a peer's local API, path sent exactly as given."""
    host, port, auth = api(node)
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request(method, path, body=body, headers={**auth, **(headers or {})})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def error_of(body: bytes) -> str:
    message: str = json.loads(body)["error"]["message"]
    return message


# --- round trips ---------------------------------------------------------------------


@pytest.mark.parametrize("where", ["local", "remote"])
def test_round_trips_of_edge_sizes_keep_every_byte(setup: Setup, where: str) -> None:
    files = setup.client.files
    if where == "remote":
        files = files.on(setup.remote.info["peer_id"])
    holder = setup.local if where == "local" else setup.remote
    for size in (0, 1, MiB - 1, MiB + 1):
        src = setup.tmp / f"{where}-src-{size}"
        digest = make_file(src, size)
        stored = files.put(f"edge-{size}", src)
        assert (stored.size, stored.sha256, stored.peer_id) == (
            size,
            digest,
            holder.info["peer_id"],
        )
        assert sha256_of(storage(holder) / f"edge-{size}") == digest
        out = setup.tmp / f"{where}-out-{size}"
        got = files.get(f"edge-{size}", out)
        assert (got.size, got.sha256, got.peer_id) == (size, digest, holder.info["peer_id"])
        assert sha256_of(out) == digest and out.stat().st_size == size
    assert not list(setup.tmp.glob(".*.part"))  # the client left no temp files either


@pytest.mark.parametrize("where", ["local", "remote"])
def test_200_mib_round_trip_in_constant_memory(setup: Setup, where: str) -> None:
    files = setup.client.files
    if where == "remote":
        files = files.on(setup.remote.info["address"])
    watched = [setup.local] if where == "local" else [setup.local, setup.remote]
    small, big = setup.tmp / f"{where}-20m", setup.tmp / f"{where}-200m"
    make_file(small, 20 * MiB)
    digest = make_file(big, 200 * MiB)

    files.put("warm-up", small)
    files.get("warm-up", setup.tmp / f"{where}-20m.out")
    before = [peak_rss(n) for n in watched]
    assert files.put("big", big).sha256 == digest
    got = files.get("big", setup.tmp / f"{where}-200m.out")
    after = [peak_rss(n) for n in watched]

    assert got.sha256 == digest == sha256_of(setup.tmp / f"{where}-200m.out")
    for node, b, a in zip(watched, before, after, strict=True):
        assert a - b < 30 * MiB, f"peak RSS of {node.data_dir.name} grew by {(a - b) >> 20} MiB"
    for n in (small, big):
        n.unlink()


async def test_async_client_does_the_same(setup: Setup) -> None:
    src = setup.tmp / "async-src"
    digest = make_file(src, 3 * MiB + 7)
    async with AsyncClient(data_dir=setup.local.data_dir) as client:
        stages: set[str] = set()
        put = await client.files.put("async", src, progress=lambda s, d, t: stages.add(s))
        got = await client.files.get("async", setup.tmp, progress=lambda s, d, t: stages.add(s))
        assert put.sha256 == got.sha256 == digest == sha256_of(setup.tmp / "async")
        assert stages == {"hashing", "sending", "receiving"}
        assert "async" in [f.name for f in await client.files.list()]
        assert (await client.files.delete("async")).name == "async"


@pytest.mark.parametrize("size", [1000, 3 * MiB])
async def test_the_client_refuses_bytes_that_do_not_match_the_announced_hash(
    tmp_path: Path, size: int
) -> None:
    """A peer that lies (or bytes damaged on the way): nothing appears at the save path,
    for small bodies (read whole) and streamed ones alike."""
    body = os.urandom(size)

    async def lying(request: web.Request) -> web.Response:
        return web.Response(body=body, headers={SHA256_HEADER: "0" * 64})

    app = web.Application()
    app.router.add_get("/v1/files/{name}", lying)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with AsyncClient(peer=f"127.0.0.1:{port}", token="t") as client:
            with pytest.raises(PeerOSError, match="do not match the peer's SHA-256"):
                await client.files.get("x", tmp_path / "out")
    finally:
        await runner.cleanup()
    assert list(tmp_path.iterdir()) == []


def test_range_requests_locally_and_relayed(setup: Setup) -> None:
    src = setup.tmp / "range-src"
    make_file(src, 1000)
    data = src.read_bytes()
    setup.client.files.on(setup.remote.info["peer_id"]).put("range", src)
    setup.client.files.put("range", src)
    for query in ("", f"?on={setup.remote.info['peer_id']}"):
        status, headers, body = raw(
            setup.local, "GET", f"/v1/files/range{query}", headers={"Range": "bytes=10-19"}
        )
        assert (status, body, headers["Content-Range"]) == (206, data[10:20], "bytes 10-19/1000")
        status, _, body = raw(
            setup.local, "GET", f"/v1/files/range{query}", headers={"Range": "bytes=-5"}
        )
        assert (status, body) == (206, data[-5:])
        status, headers, body = raw(
            setup.local, "GET", f"/v1/files/range{query}", headers={"Range": "bytes=5000-"}
        )
        assert status == 416 and headers["Content-Range"] == "bytes */1000"


# --- listing and deleting ------------------------------------------------------------


def test_list_and_delete_here_and_there(setup: Setup) -> None:
    src = setup.tmp / "list-src"
    digest = make_file(src, 12345)
    remote_id = setup.remote.info["peer_id"]
    for files, holder in (
        (setup.client.files, setup.local),
        (setup.client.files.on(remote_id), setup.remote),
    ):
        for name in ("list-b", "list-a", "naïve name.txt"):
            files.put(name, src)
        listed = {f.name: f for f in files.list()}
        assert {"list-a", "list-b", "naïve name.txt"} <= set(listed)
        names = [f.name for f in files.list()]
        assert names == sorted(names)
        entry = listed["list-a"]
        assert (entry.size, entry.sha256, entry.peer_id) == (12345, digest, holder.info["peer_id"])
        assert abs(entry.modified - (storage(holder) / "list-a").stat().st_mtime) < 1e-3

        assert files.delete("list-a").peer_id == holder.info["peer_id"]
        assert "list-a" not in {f.name for f in files.list()}
        assert not (storage(holder) / "list-a").exists()
        with pytest.raises(NotFound, match=rf"no file 'list-a' on peer {holder.info['peer_id']}"):
            files.delete("list-a")
    # by address as well as by peer id
    by_address = setup.client.files.on(setup.remote.info["address"]).list()
    assert "list-b" in {f.name for f in by_address}


def test_hash_survives_a_stale_sidecar(setup: Setup) -> None:
    """A file changed behind the peer's back is re-hashed, never served with an old hash."""
    src = setup.tmp / "stale-src"
    make_file(src, 5000)
    setup.client.files.put("stale", src)
    path = storage(setup.local) / "stale"
    path.write_bytes(b"changed by hand")
    listed = {f.name: f for f in setup.client.files.list()}
    assert listed["stale"].sha256 == hashlib.sha256(b"changed by hand").hexdigest()
    got = setup.client.files.get("stale", setup.tmp / "stale-out")
    assert got.sha256 == listed["stale"].sha256


# --- bad input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw_name", "problem"),
    [
        ("..%2F..%2Fetc%2Fpasswd", "must not contain '/'"),
        ("%2E%2E", "must not be '..'"),
        ("%2Fetc%2Fpasswd", "must not contain '/'"),
        ("a%00b", "must not contain NUL"),
        ("a" * 256, "256 bytes in UTF-8; the limit is 255"),
        (".part-x", "reserved"),
    ],
)
def test_bad_names_are_refused_on_every_route(setup: Setup, raw_name: str, problem: str) -> None:
    for method, body in (("PUT", b"data"), ("GET", None), ("DELETE", None)):
        for query in ("", f"?on={setup.remote.info['peer_id']}"):
            status, _, reply = raw(setup.local, method, f"/v1/files/{raw_name}{query}", body)
            assert status == 400, (method, query, reply)
            assert problem in error_of(reply)
    assert not (setup.local.data_dir / "etc").exists()
    assert not partials(setup.local) and not partials(setup.remote)


def test_bad_names_are_refused_by_the_client_before_sending(setup: Setup) -> None:
    src = setup.tmp / "name-src"
    make_file(src, 10)
    for name in ("../escape", "/abs", "a\x00b", "", "x" * 300):
        with pytest.raises(BadRequest, match="bad file name"):
            setup.client.files.put(name, src)
    assert not (setup.local.data_dir / "escape").exists()


def test_missing_files_are_404_and_write_nothing(setup: Setup) -> None:
    out = setup.tmp / "missing-out"
    for files, holder in (
        (setup.client.files, setup.local),
        (setup.client.files.on(setup.remote.info["peer_id"]), setup.remote),
    ):
        with pytest.raises(NotFound, match=f"no file 'nope' on peer {holder.info['peer_id']}"):
            files.get("nope", out)
        assert not out.exists()
        assert not list(setup.tmp.glob(".missing-out.*"))  # nor its temp file
    with pytest.raises(NotFound, match="no peer aaaaaaaaaaaaaaaaaaaaaaaaaa in this cluster"):
        setup.client.files.on("a" * 26).list()
    with pytest.raises(Unavailable, match=r"cannot reach 127\.0\.0\.1:1"):
        setup.client.files.on("127.0.0.1:1").list()


def test_over_size_uploads_are_413_and_leave_nothing(setup: Setup) -> None:
    small_id = setup.small.info["peer_id"]
    exact, over = setup.tmp / "exact", setup.tmp / "over"
    make_file(exact, MiB)
    make_file(over, MiB + 1)
    files = setup.client.files.on(small_id)
    assert files.put("exact", exact).size == MiB  # the limit itself is allowed
    with pytest.raises(PayloadTooLarge, match=r"over this peer's limit of 1048576 bytes"):
        files.put("over", over)
    with Client(data_dir=setup.small.data_dir) as direct:  # its own user: same limit
        with pytest.raises(PayloadTooLarge):
            direct.files.put("over", over)
        # a body without Content-Length is counted while it streams
        status, _, reply = raw_chunked(setup.small, "/v1/files/over", over.read_bytes())
        assert status == 413, reply
        assert "over" not in {f.name for f in direct.files.list()}
    assert not (storage(setup.small) / "over").exists()
    wait_until(lambda: not partials(setup.small))


def raw_chunked(node: NodeProcess, path: str, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """PUT with ``Transfer-Encoding: chunked`` (no Content-Length)."""
    host, port, auth = api(node)
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        pieces = (data[i : i + 65536] for i in range(0, len(data), 65536))
        conn.request("PUT", path, body=pieces, headers=auth, encode_chunked=True)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    except (BrokenPipeError, ConnectionResetError):
        # the peer may answer 413 and close before it has read the whole body
        return 413, {}, b""
    finally:
        conn.close()


def test_hash_mismatch_is_400_and_stores_nothing(setup: Setup) -> None:
    body = os.urandom(3 * MiB)
    wrong = hashlib.sha256(b"something else").hexdigest()
    for query in ("", f"?on={setup.remote.info['peer_id']}"):
        status, _, reply = raw(
            setup.local, "PUT", f"/v1/files/mismatch{query}", body, {"X-PeerOS-SHA256": wrong}
        )
        assert status == 400
        assert f"sent {wrong}" in error_of(reply) and "nothing was stored" in error_of(reply)
        status, _, reply = raw(
            setup.local, "PUT", f"/v1/files/mismatch{query}", body, {"X-PeerOS-SHA256": "xyz"}
        )
        assert status == 400 and "SHA-256 must be 64 hex digits" in error_of(reply)
    for node in (setup.local, setup.remote):
        assert not (storage(node) / "mismatch").exists()
        assert not partials(node)
    # the right hash is accepted (any case)
    right = hashlib.sha256(body).hexdigest().upper()
    status, _, reply = raw(
        setup.local, "PUT", "/v1/files/mismatch", body, {"X-PeerOS-SHA256": right}
    )
    assert status == 200 and json.loads(reply)["sha256"] == right.lower()


@pytest.mark.parametrize("where", ["local", "remote"])
def test_interrupted_upload_leaves_no_file_and_no_temp(setup: Setup, where: str) -> None:
    holder = setup.local if where == "local" else setup.remote
    query = "" if where == "local" else f"?on={setup.remote.info['peer_id']}"
    name = f"cut-{where}"
    host, port, auth = api(setup.local)
    head = (
        f"PUT /v1/files/{name}{query} HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: {auth['Authorization']}\r\nContent-Length: {10 * MiB}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, port)) as sock:
        sock.sendall(head + os.urandom(5 * MiB))
        wait_until(lambda: partials(holder))  # the peer is receiving into a temp file...
        assert name not in {f.name for f in setup.client.files.list()}
        assert not (storage(holder) / name).exists()  # ...and nothing under the final name
    wait_until(lambda: not partials(holder))  # the peer noticed the cut and cleaned up
    assert not (storage(holder) / name).exists()


def test_storage_lives_in_the_data_dir(setup: Setup) -> None:
    src = setup.tmp / "where-src"
    make_file(src, 100)
    setup.client.files.put("where", src)
    assert (setup.local.data_dir / "files" / "where").read_bytes() == src.read_bytes()
    assert (setup.local.data_dir / "files").stat().st_mode & 0o777 == 0o700
