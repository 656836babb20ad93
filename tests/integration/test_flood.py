"""Flooding mode with real peers and no tracker: line and ring of 6, TTL, duplicate
suppression, downloads from hits, neighbour death and return, membership by certificate."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from peeros.cli import cli
from peeros.client import Client
from peeros.client_share import Share
from peeros.errors import BadRequest, Unavailable
from peeros.launcher import NodeProcess, start_peer
from peeros.protocol import FloodHello
from tests.conftest import FAST_PEER, Nodes, member_client, wait_until


def issue(ca_dir: Path, data_dir: Path) -> None:
    runner = CliRunner()
    for args in (
        ["ca", "init", "--dir", str(ca_dir)],
        ["ca", "issue", "--ca", str(ca_dir), "--out", str(data_dir)],
    ):
        r = runner.invoke(cli, args, catch_exceptions=False)
        assert r.exit_code == 0, r.output


def flood_peer(
    nodes: Nodes, name: str, neighbours: list[NodeProcess], ca: Path, port: int = 0
) -> NodeProcess:
    data_dir = nodes.root / name
    if not (data_dir / "node.crt").exists():
        issue(ca, data_dir)
    folder = nodes.root / f"{name}-files" / "shared"
    folder.mkdir(parents=True, exist_ok=True)
    extra = [*FAST_PEER, "--slots", "1", "--share", str(folder), "--rescan-interval", "300"]
    if neighbours:
        extra += ["--neighbors", ",".join(n.info["address"] for n in neighbours)]
    node = start_peer(data_dir, None, None, port, extra)
    nodes.started.append(node)
    return node


def share_dir(nodes: Nodes, name: str) -> Path:
    return nodes.root / f"{name}-files" / "shared"


def neighbours_of(node: NodeProcess) -> set[str]:
    with Client(data_dir=node.data_dir) as c:
        return set(Share(c).flood_stats().neighbors)


def build(nodes: Nodes, n: int, ring: bool) -> list[NodeProcess]:
    ca = nodes.root / "ca"
    peers: list[NodeProcess] = []
    for i in range(n):
        before = peers[-1:]
        if ring and i == n - 1:
            before = [peers[-1], peers[0]]
        peers.append(flood_peer(nodes, f"p{i}", before, ca))
    expect = {i: {peers[j].info["address"] for j in (i - 1, i + 1) if 0 <= j < n} for i in range(n)}
    if ring:
        expect[0].add(peers[-1].info["address"])
        expect[n - 1].add(peers[0].info["address"])
    for i, p in enumerate(peers):
        wait_until(lambda p=p, i=i: neighbours_of(p) == expect[i])
    return peers


def put(nodes: Nodes, peer: int, name: str, data: bytes, node: NodeProcess) -> str:
    (share_dir(nodes, f"p{peer}") / name).write_bytes(data)
    with Client(data_dir=node.data_dir) as c:
        Share(c).rescan()
    return hashlib.sha256(data).hexdigest()


def forwards_per_id(peers: list[NodeProcess]) -> dict[str, list[int]]:
    counts: dict[str, list[int]] = {}
    for p in peers:
        with Client(data_dir=p.data_dir) as c:
            for qid, k in Share(c).flood_stats().forwarded.items():
                counts.setdefault(qid, []).append(k)
    return counts


def test_line_of_six_ttl_duplicates_download_and_bad_input(nodes: Nodes) -> None:
    peers = build(nodes, 6, ring=False)
    data = os.urandom(600_000)
    digest = put(nodes, 5, "far.bin", data, peers[5])
    with Client(data_dir=peers[0].data_dir) as c:
        s = Share(c)
        hits = s.search("far.bin", ttl=5).hits
        assert [(h.name, h.sha256, h.size, h.hops) for h in hits] == [
            ("far.bin", digest, 600_000, 5)
        ]
        assert hits[0].holder.address == peers[5].info["address"]
        assert hits[0].holder.peer_id == peers[5].info["peer_id"]
        assert s.search("far.bin", ttl=4).hits == []  # one hop short
        assert [h.name for h in s.search("FAR", "substring").hits] == ["far.bin"]
        assert [h.name for h in s.search(sha256=digest).hits] == ["far.bin"]
        assert all(max(k) == 1 for k in forwards_per_id(peers).values())

        got = s.download(sha256=digest)
        assert Path(got.path).read_bytes() == data and got.sources == [peers[5].info["peer_id"]]

        with pytest.raises(BadRequest, match="empty"):
            s.search("")
        with pytest.raises(BadRequest, match="ttl"):
            s.search("far.bin", ttl=0)
        with pytest.raises(BadRequest, match="ttl"):
            s.search("far.bin", ttl=17)
        with pytest.raises(BadRequest, match="255"):
            s.search("x" * 300)
        with pytest.raises(BadRequest, match="sha256"):
            s.search(sha256="abc")
        assert s.search(sha256="1" * 64).hits == []


def test_ring_of_six_death_return_and_outsiders(nodes: Nodes) -> None:
    peers = build(nodes, 6, ring=True)
    digest = put(nodes, 3, "opposite.bin", b"o" * 1000, peers[3])
    with Client(data_dir=peers[0].data_dir) as c:
        s = Share(c)
        hits = s.search("opposite.bin", ttl=3).hits
        assert len(hits) == 1 and hits[0].sha256 == digest and hits[0].hops == 3
        assert s.search("opposite.bin", ttl=2).hits == []
        s.search("opposite.bin", ttl=7)
        # every peer forwards each query at most once, although the ring brings it back
        assert all(max(k) == 1 for k in forwards_per_id(peers).values())
        dupes = 0
        for p in peers:
            with Client(data_dir=p.data_dir) as pc:
                st = Share(pc).flood_stats()
                dupes += st.duplicates
                assert all(v <= 2 for v in st.received_by_id.values())
        assert dupes >= 1

    # p1 dies: p0 drops it (and learns p2 from p1's old list); the ring still answers
    address1, port1 = peers[1].info["address"], int(peers[1].info["address"].rsplit(":", 1)[1])
    nodes.kill9(peers[1])
    wait_until(lambda: address1 not in neighbours_of(peers[0]))
    wait_until(lambda: peers[2].info["address"] in neighbours_of(peers[0]))
    # ... and comes back on its address: p0 and p2 take it back
    back = flood_peer(nodes, "p1", [peers[0], peers[2]], nodes.root / "ca", port=port1)
    wait_until(lambda: address1 in neighbours_of(peers[0]) and address1 in neighbours_of(peers[2]))
    assert back.info["address"] == address1

    # a peer whose certificate comes from another CA never becomes anyone's neighbour
    outsider = flood_peer(nodes, "outsider", [peers[0]], nodes.root / "other-ca")
    hello = FloodHello(address=outsider.info["address"], neighbors=[])

    async def greet() -> None:
        client = member_client(outsider.data_dir)
        try:
            await client.request(peers[0].info["address"], "POST", "/v1/flood/hello", hello)
        finally:
            await client.close()

    with pytest.raises(Unavailable):  # the TLS handshake fails: not a member
        asyncio.run(greet())
    with Client(data_dir=outsider.data_dir) as oc, pytest.raises(BadRequest, match="no live"):
        Share(oc).search("opposite.bin")
    assert outsider.info["address"] not in neighbours_of(peers[0])
