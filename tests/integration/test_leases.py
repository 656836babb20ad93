"""Placement leases end to end: a single task after warm-up asks the tracker nothing,
sequential tasks reuse a warm lease, and ``elsewhere`` keeps tasks off their origin."""

from __future__ import annotations

import peeros
from peeros import Client
from tests.conftest import Nodes
from tests.integration.test_tasks import SQUARE, tracker_placements

#: Heartbeats (and so lease lifetimes) long enough that no lease expires during a test.
SLOW_PEER = ["--heartbeat-interval", "30"]
SLOW_TRACKER = ["--dead-after", "120"]


def test_a_single_task_after_warm_up_needs_no_placement_request(nodes: Nodes) -> None:
    cluster = nodes.cluster(3, peer_extra=SLOW_PEER, tracker_extra=SLOW_TRACKER)
    with Client(data_dir=cluster.peers[0].data_dir) as client:
        client.run_program(SQUARE, "main", [1])  # placed; fills the lease pool
        before = tracker_placements(nodes.root, cluster)
        results = [client.run_program(SQUARE, "main", [i]) for i in range(2, 6)]
        after = tracker_placements(nodes.root, cluster)
        # A burst of concurrent tasks takes several leases: the tracker's spread holds.
        burst = client.results(
            client.submit_requests(
                [
                    peeros.protocol.TaskRequest(program=SQUARE, function="main", args=[i])
                    for i in range(3)
                ]
            )
        )
    assert [(r.status, r.result) for r in results] == [("DONE", i * i) for i in range(2, 6)]
    assert after == before  # no request, no placement: all of them came from leases
    # Each sequential task reused the lease the one before it gave back: one warm peer.
    assert len({r.peer_id for r in results}) == 1
    assert {r.peer_id for r in burst} == {p.info["peer_id"] for p in cluster.peers}


def test_elsewhere_tasks_never_run_on_the_submitting_peer(nodes: Nodes) -> None:
    cluster = nodes.cluster(3, peer_extra=SLOW_PEER, tracker_extra=SLOW_TRACKER)
    origin = cluster.peers[0].info["peer_id"]
    with Client(data_dir=cluster.peers[0].data_dir) as client:
        singles = [client.run_program(SQUARE, "main", [i], elsewhere=True) for i in range(6)]
        batch = client.results(
            client.submit_requests(
                [
                    peeros.protocol.TaskRequest(
                        program=SQUARE, function="main", args=[i], elsewhere=i % 2 == 0
                    )
                    for i in range(40)
                ]
            )
        )
        assert client.submit(abs, -2, elsewhere=True).result(timeout=60) == 2
    assert [(r.status, r.result) for r in singles] == [("DONE", i * i) for i in range(6)]
    assert origin not in {r.peer_id for r in singles}
    assert [r.result for r in batch] == [i * i for i in range(40)]
    assert origin not in {r.peer_id for r in batch[::2]}  # the elsewhere half
    assert origin in {r.peer_id for r in batch[1::2]}  # the others may run here


def test_elsewhere_with_no_other_peer_fails_and_names_why(nodes: Nodes) -> None:
    cluster = nodes.cluster(1)
    with Client(data_dir=cluster.peers[0].data_dir) as client:
        r = client.run_program(SQUARE, "main", [3], elsewhere=True)
        assert (r.status, r.result) == ("FAILED", None)
        assert r.error is not None and "no other peer can run it" in r.error
        assert client.run_program(SQUARE, "main", [3]).result == 9  # not elsewhere: here


def test_leases_off_asks_the_tracker_for_every_task(nodes: Nodes) -> None:
    cluster = nodes.cluster(
        2, peer_extra=[*SLOW_PEER, "--placement-leases", "0"], tracker_extra=SLOW_TRACKER
    )
    with Client(data_dir=cluster.peers[0].data_dir) as client:
        before = tracker_placements(nodes.root, cluster)
        for i in range(3):
            assert client.run_program(SQUARE, "main", [i]).result == i * i
    assert tracker_placements(nodes.root, cluster) == (before[0] + 3, before[1] + 3)


def test_a_peer_that_died_after_its_leases_were_granted_costs_no_task(nodes: Nodes) -> None:
    cluster = nodes.cluster(3, peer_extra=SLOW_PEER, tracker_extra=SLOW_TRACKER)
    origin, victim = cluster.peers[0], cluster.peers[1]
    with Client(data_dir=origin.data_dir) as client:
        client.run_program(SQUARE, "main", [1])  # fills the pool: leases on every peer
        nodes.kill9(victim)  # the tracker still believes it alive (dead-after 120 s)
        singles = [client.run_program(SQUARE, "main", [i]) for i in range(4)]  # no retries
        batch = client.results(
            client.submit_requests(
                [
                    peeros.protocol.TaskRequest(program=SQUARE, function="main", args=[i])
                    for i in range(6)
                ]
            )
        )
    # A task sent to the dead peer was never delivered (connection refused): it is placed
    # again elsewhere without using up a retry, and the dead peer's leases are dropped.
    assert [(r.status, r.result) for r in singles] == [("DONE", i * i) for i in range(4)]
    assert [(r.status, r.result) for r in batch] == [("DONE", i * i) for i in range(6)]
    assert victim.info["peer_id"] not in {r.peer_id for r in singles + batch}
    assert {r.attempts for r in singles + batch} == {1}
