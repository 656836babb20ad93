"""Faults during CPU work: the executing peer is killed mid-task."""

from __future__ import annotations

import peeros
from peeros import Client
from tests.conftest import Nodes, wait_until

SLOW = "def main(v):\n    import time\n    time.sleep(3)\n    return v\n"


def test_kill9_of_the_executing_peer_retries_elsewhere_and_answers_once(nodes: Nodes) -> None:
    cluster = nodes.cluster(3)
    origin = cluster.peers[0]
    with Client(data_dir=origin.data_dir) as client:
        ids = client.submit_requests(
            [
                peeros.protocol.TaskRequest(program=SLOW, function="main", args=[i], max_retries=1)
                for i in range(3)
            ]
        )
        running = wait_until(
            lambda: (
                (rs := [client.task(i) for i in ids])
                and all(r.status == "RUNNING" and r.peer_id for r in rs)
                and rs
            )
        )
        executors = {r.task_id: r.peer_id for r in running}
        victim_id = next(p for p in executors.values() if p != origin.info["peer_id"])
        victim = next(p for p in cluster.peers if p.info["peer_id"] == victim_id)
        nodes.kill9(victim)
        results = client.results(ids)
    assert [r.result for r in results] == [0, 1, 2]
    assert all(r.status == "DONE" for r in results)
    for r in results:
        if executors[r.task_id] == victim_id:
            assert r.attempts == 2 and r.peer_id != victim_id
        else:
            assert r.attempts == 1
    # exactly one result per task: the history holds one row per id, each final
    with Client(data_dir=origin.data_dir) as client:
        rows = [t for t in client.history(100).tasks if t["task_id"] in ids]
    assert sorted(t["task_id"] for t in rows) == sorted(ids)
    assert {t["status"] for t in rows} == {"DONE"}


def test_without_retries_a_dead_executor_is_a_clear_failure(nodes: Nodes) -> None:
    cluster = nodes.cluster(2)
    origin = cluster.peers[0]
    with Client(data_dir=origin.data_dir) as client:
        ids = client.submit_requests(
            [peeros.protocol.TaskRequest(program=SLOW, function="main", args=[i]) for i in range(2)]
        )
        running = wait_until(
            lambda: (
                (rs := [client.task(i) for i in ids])
                and all(r.status == "RUNNING" and r.peer_id for r in rs)
                and rs
            )
        )
        remote = next(r for r in running if r.peer_id != origin.info["peer_id"])
        nodes.kill9(next(p for p in cluster.peers if p.info["peer_id"] == remote.peer_id))
        result = next(r for r in client.results(ids) if r.task_id == remote.task_id)
    assert result.status == "FAILED"
    assert f"executing peer {remote.peer_id} failed" in (result.error or "")
