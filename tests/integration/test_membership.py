"""Membership with real processes: enrollment, heartbeats, death, moves, tracker restarts."""

from __future__ import annotations

import asyncio
import json

from peeros import Client
from peeros.protocol import PeerInfo, PeerList
from peeros.security import pki
from tests.conftest import Nodes, member_client, wait_until


def tracker_view(data_dir, tracker_address: str) -> dict[str, PeerInfo]:  # type: ignore[no-untyped-def]
    """The tracker's registry as a member sees it, over mutual TLS."""

    async def fetch() -> PeerList:
        client = member_client(data_dir)
        try:
            result: PeerList = await client.request(
                tracker_address, "GET", "/v1/peers", response=PeerList
            )
            return result
        finally:
            await client.close()

    return {p.peer_id: p for p in asyncio.run(fetch()).peers}


def test_enrollment_gives_each_peer_a_certificate_for_its_own_id(nodes: Nodes) -> None:
    tracker = nodes.tracker()
    peer = nodes.peer(tracker, "p1")
    cert = pki.load_cert_pem((peer.data_dir / pki.NODE_CERT_FILE).read_bytes())
    assert pki.cert_peer_id(cert) == peer.info["peer_id"]
    ca = pki.load_cert_pem((tracker.data_dir / pki.CA_CERT_FILE).read_bytes())
    cert.verify_directly_issued_by(ca)
    view = wait_until(lambda: tracker_view(peer.data_dir, tracker.info["address"]))
    assert view[peer.info["peer_id"]].address == peer.info["address"]


def test_heartbeats_carry_real_load_figures(nodes: Nodes) -> None:
    cluster = nodes.cluster(2)
    with Client(data_dir=cluster.peers[0].data_dir) as client:
        infos = wait_until(
            lambda: [p for p in client.peers() if p.alive] if len(client.peers()) == 2 else None
        )
        for info in infos:
            assert info.load.slots >= 1
            assert info.load.mem_free > 0
            assert info.load.disk_free > 0
            assert info.load.cpu_percent >= 0.0
        first = {p.peer_id: p.last_heartbeat for p in infos}
        # heartbeats keep coming: the timestamps advance
        wait_until(lambda: all(p.last_heartbeat > first[p.peer_id] for p in client.peers()))


def test_a_killed_peer_is_declared_dead_and_leaves_the_live_list(nodes: Nodes) -> None:
    cluster = nodes.cluster(2)
    victim, survivor = cluster.peers
    with Client(data_dir=survivor.data_dir) as client:
        wait_until(lambda: sum(p.alive for p in client.peers()) == 2)
        nodes.kill9(victim)
        dead = wait_until(
            lambda: [
                p for p in client.peers() if p.peer_id == victim.info["peer_id"] and not p.alive
            ],
            timeout=10,
        )
        assert dead[0].state == "dead"
        assert [p.peer_id for p in client.peers() if p.alive] == [survivor.info["peer_id"]]


def test_clean_shutdown_unregisters(nodes: Nodes) -> None:
    cluster = nodes.cluster(2)
    leaving, staying = cluster.peers
    with Client(data_dir=staying.data_dir) as client:
        wait_until(lambda: sum(p.alive for p in client.peers()) == 2)
        from peeros.launcher import stop

        stop([leaving])
        assert leaving.proc.returncode == 0
        # "left" immediately, long before the dead-after timeout could have fired
        states = {p.peer_id: p.state for p in client.peers()}
        assert states[leaving.info["peer_id"]] == "left"


def test_identity_survives_a_restart_on_another_port(nodes: Nodes) -> None:
    tracker = nodes.tracker()
    first = nodes.peer(tracker, "mover")
    old_id, old_address = first.info["peer_id"], first.info["address"]
    from peeros.launcher import stop

    stop([first])
    # no join token needed the second time: the certificate is already there
    second = nodes.peer(tracker.info["address"], "mover", token=None)
    assert second.info["peer_id"] == old_id
    assert second.info["address"] != old_address
    view = wait_until(
        lambda: (
            (v := tracker_view(second.data_dir, tracker.info["address"]))[old_id].alive
            and v[old_id].address == second.info["address"]
            and v
        )
    )
    assert len(view) == 1  # re-registered under the same id, not a second entry


def test_tracker_kill9_and_restart_keeps_the_registry(nodes: Nodes) -> None:
    tracker = nodes.tracker(extra=["--dead-after", "30"])
    address = tracker.info["address"]
    port = int(address.rsplit(":", 1)[1])
    p1 = nodes.peer(tracker, "p1")
    p2 = nodes.peer(tracker, "p2")
    ids = {p1.info["peer_id"], p2.info["peer_id"]}
    wait_until(lambda: set(tracker_view(p1.data_dir, address)) == ids)
    nodes.kill9(tracker)
    restarted = nodes.tracker(port=port, extra=["--dead-after", "30"])
    assert restarted.info["address"] == address
    # the registry came back from SQLite before any peer spoke again
    db_rows = tracker_view(p1.data_dir, address)
    assert set(db_rows) == ids
    # and the peers come back on their own (their next heartbeat re-registers them)
    t0 = max(r.last_heartbeat for r in db_rows.values())
    wait_until(
        lambda: all(r.last_heartbeat > t0 for r in tracker_view(p1.data_dir, address).values())
    )
    with Client(data_dir=p2.data_dir) as client:
        wait_until(lambda: client.status().tracker_reachable)


def test_peer_keeps_serving_its_local_api_while_the_tracker_is_down(nodes: Nodes) -> None:
    tracker = nodes.tracker()
    peer = nodes.peer(tracker, "p1")
    with Client(data_dir=peer.data_dir) as client:
        wait_until(lambda: len(client.peers()) == 1)
        nodes.kill9(tracker)
        wait_until(lambda: not client.status().tracker_reachable)
        cached = client._run(client._async.request("GET", "/v1/peers"))
        assert cached["stale"] is True and len(cached["peers"]) == 1


def test_up_writes_a_manifest_of_every_node(nodes: Nodes) -> None:
    cluster = nodes.cluster(3)
    manifest = json.loads((cluster.data_dir / "cluster.json").read_text())
    assert manifest["tracker"]["address"] == cluster.tracker_address
    assert len(manifest["peers"]) == 3
    for entry, node in zip(manifest["peers"], cluster.peers, strict=True):
        assert entry["peer_id"] == node.info["peer_id"]
        assert entry["pid"] == node.pid
        assert entry["api_url"].startswith("http://127.0.0.1:")
        assert {"address", "data_dir"} <= set(entry)
