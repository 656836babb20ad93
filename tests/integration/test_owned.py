"""Owned files: real tracker and peers; holders' disks searched for plaintext; signed
requests forged and replayed against real holders and the tracker."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from peeros import Client
from peeros.errors import Conflict, Forbidden, NotFound, PeerOSError, QuotaExceeded, Unavailable
from peeros.launcher import NodeProcess
from peeros.peer.owned import INDEX_FILE, holder_path
from peeros.protocol import OWNER_AUTH_HEADER, OwnedRecord, OwnedSigned
from peeros.security import identity, owner_auth
from tests.conftest import FAST_PEER, Nodes, member_client, wait_until

MiB = 1 << 20
#: A 32-byte marker written many times into plaintexts, searched for on holders' disks.
MARKER = b"PEEROS-PLAINTEXT-MARKER-0123456!"


@dataclass
class Setup:
    nodes: Nodes
    tracker: NodeProcess
    owner: NodeProcess
    #: the other peers (possible holders), by peer id
    others: dict[str, NodeProcess]
    client: Client
    tmp: Path

    @property
    def holders(self) -> list[NodeProcess]:
        return list(self.others.values())

    def held_by(self, rec: OwnedRecord) -> list[NodeProcess]:
        return [self.others[h.peer_id] for h in rec.holders]


def start(nodes: Nodes, n_others: int = 2, holder_extra: list[str] | None = None) -> Setup:
    tracker = nodes.tracker()
    owner = nodes.peer(tracker, "owner")
    others = [nodes.peer(tracker, f"h{i}", extra=holder_extra) for i in range(n_others)]
    client = Client(data_dir=owner.data_dir)
    wait_until(lambda: sum(p.alive for p in client.peers()) == n_others + 1)
    tmp = nodes.root / "work"
    tmp.mkdir(exist_ok=True)
    return Setup(nodes, tracker, owner, {p.info["peer_id"]: p for p in others}, client, tmp)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    nodes = Nodes(tmp_path_factory.mktemp("owned"))
    try:
        s = start(nodes, n_others=3)
        yield s
        s.client.close()
    finally:
        nodes.stop_all()


def plaintext(path: Path, size: int) -> bytes:
    """A file of ``size`` bytes full of MARKER plus random bytes; returns its SHA-256."""
    data = (MARKER + os.urandom(32)) * (size // 64 + 1)
    path.write_bytes(data[:size])
    return hashlib.sha256(data[:size]).digest()


def disk_bytes(node: NodeProcess) -> bytes:
    return b"".join(p.read_bytes() for p in node.data_dir.rglob("*") if p.is_file())


def blobs(node: NodeProcess, owner: NodeProcess) -> list[Path]:
    directory = node.data_dir / "owned" / owner.info["peer_id"]
    return sorted(p for p in directory.iterdir()) if directory.is_dir() else []


async def _cluster_call(
    data_dir: Path, address: str, method: str, path: str, **kwargs: Any
) -> tuple[int, bytes]:
    """A raw cluster-plane request with the credentials of the node in ``data_dir``."""
    client = member_client(data_dir)
    try:
        try:
            async with client.stream(address, method, path, **kwargs) as resp:
                return resp.status, await resp.read()
        except PeerOSError as exc:
            return {Forbidden: 403, NotFound: 404}.get(type(exc), 500), str(exc).encode()
    finally:
        await client.close()


def cluster_call(data_dir: Path, address: str, method: str, path: str, **kw: Any) -> int:
    return asyncio.run(_cluster_call(data_dir, address, method, path, **kw))[0]


def signed(node: NodeProcess, op: str, name: str, as_owner: str | None = None) -> dict[str, str]:
    """Headers with ``node``'s signature; ``as_owner`` claims another owner id."""
    auth = owner_auth.sign(identity.load_or_create(node.data_dir), op, name, time.time())  # type: ignore[arg-type]
    if as_owner is not None:
        auth = auth.model_copy(update={"owner_id": as_owner})
    return {OWNER_AUTH_HEADER: auth.model_dump_json()}


# --- the round trip ------------------------------------------------------------------


def test_upload_stores_ciphertext_only_and_downloads_equal(setup: Setup) -> None:
    src = setup.tmp / "secret.bin"
    digest = plaintext(src, 3 * MiB + 7)
    rec = setup.client.owned.upload(src, "secret.bin")
    assert len({h.peer_id for h in rec.holders}) == 2
    assert setup.owner.info["peer_id"] not in {h.peer_id for h in rec.holders}
    assert rec.size == 3 * MiB + 7 and rec.owner_id == setup.owner.info["peer_id"]
    for holder in setup.held_by(rec):
        assert [p.name for p in blobs(holder, setup.owner)] == ["secret.bin"]
        assert MARKER not in disk_bytes(holder)
    out = setup.tmp / "back.bin"
    got = setup.client.owned.download("secret.bin", out)
    assert hashlib.sha256(out.read_bytes()).digest() == digest and got.size == rec.size
    assert [f.name for f in setup.client.owned.list()] == ["secret.bin"]
    with pytest.raises(Conflict, match="already exists"):
        setup.client.owned.upload(src, "secret.bin")


def test_empty_file_round_trip(setup: Setup) -> None:
    src = setup.tmp / "empty"
    src.write_bytes(b"")
    setup.client.owned.upload(src, "empty", replicas=1)
    setup.client.owned.download("empty", setup.tmp / "empty.out")
    assert (setup.tmp / "empty.out").read_bytes() == b""
    setup.client.owned.delete("empty")


def test_delete_removes_every_copy_and_the_registry_entry(setup: Setup) -> None:
    src = setup.tmp / "gone.bin"
    plaintext(src, 100_000)
    rec = setup.client.owned.upload(src, "gone.bin")
    assert all(blobs(h, setup.owner) for h in setup.held_by(rec))
    deleted = setup.client.owned.delete("gone.bin")
    assert sorted(deleted.removed_from) == sorted(h.peer_id for h in rec.holders)
    for holder in setup.holders:
        assert "gone.bin" not in [p.name for p in blobs(holder, setup.owner)]
    assert "gone.bin" not in [f.name for f in setup.client.owned.list(refresh=True)]
    with pytest.raises(NotFound):
        setup.client.owned.download("gone.bin", setup.tmp / "x")


def test_list_is_rebuilt_from_the_tracker(setup: Setup) -> None:
    src = setup.tmp / "kept.bin"
    plaintext(src, 5000)
    setup.client.owned.upload(src, "kept.bin")
    before = {f.name: f for f in setup.client.owned.list()}
    (setup.owner.data_dir / INDEX_FILE).unlink()
    after = {f.name: f for f in setup.client.owned.list()}
    assert after.keys() == before.keys() and "kept.bin" in after
    assert after["kept.bin"].size == 5000
    assert (setup.owner.data_dir / INDEX_FILE).exists()
    setup.client.owned.download("kept.bin", setup.tmp / "kept.out")


def test_too_few_live_peers_is_a_clear_503(setup: Setup) -> None:
    src = setup.tmp / "many.bin"
    plaintext(src, 10)
    with pytest.raises(Unavailable, match="live peers"):
        setup.client.owned.upload(src, "many.bin", replicas=5)
    assert "many.bin" not in [f.name for f in setup.client.owned.list(refresh=True)]


# --- authorisation ---------------------------------------------------------------------


def test_another_peer_cannot_download_or_delete(setup: Setup) -> None:
    src = setup.tmp / "mine.bin"
    plaintext(src, 2000)
    rec = setup.client.owned.upload(src, "mine.bin")
    owner_id = setup.owner.info["peer_id"]
    holder = setup.held_by(rec)[0]
    path = holder_path(owner_id, "mine.bin")
    attacker = setup.holders[0]
    other = attacker.data_dir
    before = (holder.data_dir / "owned" / owner_id / "mine.bin").read_bytes()
    # signed as itself, claiming to be the owner; signed as itself for itself; unsigned
    for headers in (
        signed(attacker, "download", "mine.bin", as_owner=owner_id),
        signed(attacker, "delete", "mine.bin", as_owner=owner_id),
        {},
    ):
        for method in ("GET", "DELETE"):
            assert cluster_call(other, holder.info["address"], method, path, headers=headers) == 403
    # a store over the owner's file by someone else
    status = cluster_call(other, holder.info["address"], "PUT", path, data=b"x" * 10)
    assert status == 403
    # the tracker refuses to delete or locate for a forged owner
    for op in ("delete", "locate"):
        auth = owner_auth.sign(
            identity.load_or_create(other),
            "delete" if op == "delete" else "download",
            "mine.bin",
            time.time(),
        ).model_copy(update={"owner_id": owner_id})
        body = OwnedSigned(auth=auth).model_dump_json().encode()
        status = cluster_call(
            other,
            setup.tracker.info["address"],
            "POST",
            f"/v1/owned/{op}",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        assert status in (403, 404)
    assert (holder.data_dir / "owned" / owner_id / "mine.bin").read_bytes() == before
    assert "mine.bin" in [f.name for f in setup.client.owned.list(refresh=True)]


def test_a_replayed_signed_request_is_refused(setup: Setup) -> None:
    src = setup.tmp / "replay.bin"
    plaintext(src, 1000)
    rec = setup.client.owned.upload(src, "replay.bin")
    holder = setup.held_by(rec)[1]
    path = holder_path(setup.owner.info["peer_id"], "replay.bin")
    headers = signed(setup.owner, "download", "replay.bin")
    address = holder.info["address"]
    assert cluster_call(setup.owner.data_dir, address, "GET", path, headers=headers) == 200
    assert cluster_call(setup.owner.data_dir, address, "GET", path, headers=headers) == 403
    stale = owner_auth.sign(
        identity.load_or_create(setup.owner.data_dir), "delete", "replay.bin", time.time() - 120
    )
    stale_headers = {OWNER_AUTH_HEADER: stale.model_dump_json()}
    assert cluster_call(setup.owner.data_dir, address, "DELETE", path, headers=stale_headers) == 403
    assert "replay.bin" in [p.name for p in blobs(holder, setup.owner)]


# --- restarts and quotas -----------------------------------------------------------------


def free_port_other_than(address: str) -> int:
    """A free port that is not the one of ``address`` (port 0 could hand it back)."""
    old = int(address.rsplit(":", 1)[1])
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port != old:
            return port


def test_owner_restart_on_new_port_and_tracker_kill9_keep_everything(tmp_path: Path) -> None:
    nodes = Nodes(tmp_path)
    try:
        s = start(nodes)
        src = s.tmp / "durable.bin"
        digest = plaintext(src, 2 * MiB)
        s.client.owned.upload(src, "durable.bin")
        s.client.close()
        old_address = s.owner.info["address"]
        nodes.kill9(s.tracker)
        tracker = nodes.tracker(port=int(s.tracker.info["address"].rsplit(":", 1)[1]))
        owner_id = s.owner.info["peer_id"]
        nodes.kill9(s.owner)
        (s.owner.data_dir / INDEX_FILE).unlink()
        owner = nodes.peer(tracker, "owner", port=free_port_other_than(old_address))
        assert owner.info["peer_id"] == owner_id and owner.info["address"] != old_address
        with Client(data_dir=owner.data_dir) as client:
            wait_until(lambda: sum(p.alive for p in client.peers()) == 3)
            files = client.owned.list()
            assert [f.name for f in files] == ["durable.bin"]
            assert files[0].owner_address == owner.info["address"]
            client.owned.download("durable.bin", s.tmp / "out.bin")
            assert hashlib.sha256((s.tmp / "out.bin").read_bytes()).digest() == digest
            client.owned.delete("durable.bin")
            assert not any(blobs(h, owner) for h in s.holders)
    finally:
        nodes.stop_all()


def test_over_quota_is_refused_before_writing(tmp_path: Path) -> None:
    nodes = Nodes(tmp_path)
    try:
        s = start(nodes, holder_extra=[*FAST_PEER, "--owned-quota-mb", "1"])
        src = s.tmp / "big.bin"
        plaintext(src, 2 * MiB)
        with pytest.raises(QuotaExceeded, match="quota"):
            s.client.owned.upload(src, "big.bin")
        for holder in s.holders:
            assert not blobs(holder, s.owner)
        assert s.client.owned.list(refresh=True) == []
        small = s.tmp / "small.bin"
        plaintext(small, 100_000)
        s.client.owned.upload(small, "small.bin")
        s.client.close()
    finally:
        nodes.stop_all()


def test_one_holder_refusing_leaves_no_copy_on_the_other(tmp_path: Path) -> None:
    """The blob streams to both holders at once: when one refuses, the other's upload is
    cut short (or its finished copy removed), and nothing is recorded."""
    nodes = Nodes(tmp_path)
    try:
        tracker = nodes.tracker()
        owner = nodes.peer(tracker, "owner")
        roomy = nodes.peer(tracker, "roomy")
        tight = nodes.peer(tracker, "tight", extra=[*FAST_PEER, "--owned-quota-mb", "4"])
        with Client(data_dir=owner.data_dir) as client:
            wait_until(lambda: sum(p.alive for p in client.peers()) == 3)
            src = tmp_path / "eight.bin"
            plaintext(src, 8 * MiB)
            with pytest.raises(QuotaExceeded, match="quota"):
                client.owned.upload(src, "eight.bin")
            for holder in (roomy, tight):
                wait_until(lambda h=holder: not blobs(h, owner))  # parts go when cut off
            assert client.owned.list(refresh=True) == []
    finally:
        nodes.stop_all()


def test_interrupted_upload_leaves_nothing_anywhere(setup: Setup) -> None:
    api = setup.client.endpoint
    url = urlsplit(api.url)
    assert url.hostname is not None and url.port is not None
    head = (
        f"PUT /v1/owned/cut.bin HTTP/1.1\r\nHost: {url.hostname}\r\n"
        f"Authorization: Bearer {api.token}\r\nContent-Length: {10 * MiB}\r\n\r\n"
    ).encode()

    def partials() -> list[Path]:
        return [p for h in setup.holders for p in blobs(h, setup.owner) if ".part-" in p.name]

    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(head + os.urandom(3 * MiB))
        # the owner streams ciphertext to its 2 holders as it encrypts...
        wait_until(lambda: len(partials()) == 2)
    wait_until(lambda: not partials())  # ...and each discards its part after the cut
    assert "cut.bin" not in [f.name for f in setup.client.owned.list(refresh=True)]
    for holder in setup.holders:
        assert "cut.bin" not in [p.name for p in blobs(holder, setup.owner)]
    assert not any((setup.owner.data_dir / "owned-tmp").iterdir())
