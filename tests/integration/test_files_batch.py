"""Batch downloads (``POST /v1/files-batch``, ``client.files.get_many``): real peers, real
sockets, real disks; every byte and hash compared, nothing saved unless all arrived."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from peeros import AsyncClient, Client
from peeros.errors import BadRequest, NotFound, PeerOSError
from peeros.launcher import LocalCluster, NodeProcess
from tests.conftest import Nodes
from tests.integration.test_files import raw

MiB = 1 << 20
#: Sizes around the small-body (64 KiB) and chunk (1 MiB) boundaries.
SIZES = [0, 1, 1000, 64 << 10, (64 << 10) + 1, MiB + 3, 3 * MiB]


@dataclass
class Setup:
    cluster: LocalCluster
    client: Client
    tmp: Path
    bodies: dict[str, bytes]

    @property
    def local(self) -> NodeProcess:
        return self.cluster.peers[0]

    @property
    def remote(self) -> NodeProcess:
        return self.cluster.peers[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("files-batch")
    nodes = Nodes(root)
    try:
        cluster = nodes.cluster(2)
        bodies = {f"f{i}-{size}": os.urandom(size) for i, size in enumerate(SIZES * 3)}
        src = root / "src"
        src.mkdir()
        with Client(data_dir=cluster.peers[0].data_dir) as client:
            remote = client.files.on(cluster.peers[1].info["peer_id"])
            for name, body in bodies.items():
                (src / name).write_bytes(body)
                client.files.put(name, src / name)
                remote.put(name, src / name)
            yield Setup(cluster, client, root, bodies)
    finally:
        nodes.stop_all()


def out_dir(setup: Setup, label: str) -> Path:
    path = setup.tmp / label
    path.mkdir()
    return path


def contents(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir()}


@pytest.mark.parametrize("where", ["local", "remote"])
def test_many_files_of_every_size_arrive_whole_and_verified(setup: Setup, where: str) -> None:
    files = setup.client.files
    holder = setup.local
    if where == "remote":
        files, holder = files.on(setup.remote.info["address"]), setup.remote
    out = out_dir(setup, f"all-{where}")
    names = list(setup.bodies)
    infos = files.get_many(names, out)
    assert [i.name for i in infos] == names
    for info in infos:
        body = setup.bodies[info.name]
        assert (info.size, info.sha256, info.peer_id) == (
            len(body),
            hashlib.sha256(body).hexdigest(),
            holder.info["peer_id"],
        )
    assert contents(out) == setup.bodies  # and no temp file beside them


def test_lists_longer_than_one_request_are_split(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("peeros.client_fetch.MAX_FILE_BATCH", 4)
    out = out_dir(setup, "split")
    names = list(setup.bodies)[:10]
    assert [i.name for i in setup.client.files.get_many(names, out)] == names
    assert contents(out) == {n: setup.bodies[n] for n in names}
    idle = setup.client._http._idle
    assert idle and max(c.used for c in idle) >= 3  # three requests, one connection


@pytest.mark.parametrize("where", ["local", "remote"])
def test_a_missing_file_saves_none_of_them(setup: Setup, where: str) -> None:
    files = setup.client.files
    if where == "remote":
        files = files.on(setup.remote.info["peer_id"])
    out = out_dir(setup, f"missing-{where}")
    first = next(iter(setup.bodies))
    (out / first).write_bytes(b"mine")
    names = [*list(setup.bodies)[:5], "not-there", *list(setup.bodies)[5:8]]
    with pytest.raises(NotFound, match="not-there"):
        files.get_many(names, out)
    assert contents(out) == {first: b"mine"}  # untouched, and no temp files


def test_bytes_that_do_not_match_their_hash_save_nothing(setup: Setup) -> None:
    """A file changed on the peer's disk behind its back, size and mtime kept, so that the
    peer still announces the remembered hash: the client refuses the whole batch."""
    src = setup.tmp / "tamper-src"
    src.write_bytes(os.urandom(5000))
    setup.client.files.put("tampered", src)
    stored = setup.local.data_dir / "files" / "tampered"
    st = stored.stat()
    with open(stored, "r+b") as f:
        f.write(b"X")
    os.utime(stored, ns=(st.st_atime_ns, st.st_mtime_ns))
    out = out_dir(setup, "tampered")
    with pytest.raises(PeerOSError, match="do not match the peer's SHA-256"):
        setup.client.files.get_many([next(iter(setup.bodies)), "tampered"], out)
    assert contents(out) == {}


async def test_the_async_client_does_the_same(setup: Setup) -> None:
    out = out_dir(setup, "async")
    names = list(setup.bodies)[:6]
    async with AsyncClient(data_dir=setup.local.data_dir) as client:
        infos = await client.files.on(setup.remote.info["peer_id"]).get_many(names, out)
    assert [i.name for i in infos] == names
    assert contents(out) == {n: setup.bodies[n] for n in names}


# --- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "save", "problem"),
    [
        (["ok", "../etc/passwd"], "dir", "must not contain '/'"),
        (["a", "b", "a"], "dir", "given more than once: a"),
        ([], "dir", "no file names given"),
        ("f0-0", "dir", "a list of file names"),
        (["f0-0"], "file", "is not a directory"),
        (["f0-0"], "nowhere", "is not a directory"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_sent(
    setup: Setup, names: list[str], save: str, problem: str
) -> None:
    target = setup.tmp / f"bad-{abs(hash((str(names), save)))}"
    if save == "dir":
        target.mkdir()
    elif save == "file":
        target.write_bytes(b"a file")
    before = setup.client._http._idle[0].used if setup.client._http._idle else 0
    with pytest.raises(BadRequest, match=problem):
        setup.client.files.get_many(names, target)
    after = setup.client._http._idle[0].used if setup.client._http._idle else 0
    assert after == before  # no request went out
    assert (not target.is_dir()) or list(target.iterdir()) == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"names": ["a/b"]}, "must not contain '/'"),
        ({"names": []}, "names"),
        ({"names": [f"n{i}" for i in range(1001)]}, "names"),
        ({"names": "abc"}, "names"),
        ({"files": ["a"]}, "files"),
    ],
)
def test_the_route_refuses_bad_bodies_on_both_planes_of_the_relay(
    setup: Setup, body: dict[str, object], problem: str
) -> None:
    for query in ("", f"?on={setup.remote.info['peer_id']}"):
        status, _, reply = raw(
            setup.local,
            "POST",
            f"/v1/files-batch{query}",
            json.dumps(body).encode(),
            {"Content-Type": "application/json"},
        )
        assert status == 400, (query, reply)
        assert problem in json.loads(reply)["error"]["message"]


def test_the_route_needs_the_token(setup: Setup) -> None:
    status, _, reply = raw(
        setup.local,
        "POST",
        "/v1/files-batch",
        b'{"names": ["f0-0"]}',
        {"Authorization": "Bearer wrong"},
    )
    assert status == 401 and b"wrong API token" in reply
