"""Placement leases end to end: a single task after warm-up asks the tracker nothing."""

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
        first = client.run_program(SQUARE, "main", [1])  # placed; fills the lease pool
        before = tracker_placements(nodes.root, cluster)
        results = [client.run_program(SQUARE, "main", [i]) for i in range(2, 5)]
        after = tracker_placements(nodes.root, cluster)
    assert [(r.status, r.result) for r in results] == [("DONE", 4), ("DONE", 9), ("DONE", 16)]
    assert after == before  # no request, no placement: all three came from leases
    # leases are the tracker's own choices, so sequential tasks still spread over peers
    assert {r.peer_id for r in [first, *results]} == {p.info["peer_id"] for p in cluster.peers}


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
