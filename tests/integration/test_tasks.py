"""CPU sharing end to end: real trackers, peers, sandboxed workers, the Python API."""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import json
import time
from pathlib import Path

import pytest

import peeros
from peeros import Client, TaskError
from peeros.errors import BadRequest, QuotaExceeded
from tests.conftest import FAST_PEER, Nodes, member_client, wait_until

SQUARE = "def main(x):\n    return x * x\n"
SPIN = """
def main(seconds):
    import time
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
    return seconds
"""
FORK_BOMB = """
def main():
    import os
    while True:
        os.fork()
"""
NET = """
def main():
    import socket
    socket.create_connection(('127.0.0.1', {port}), timeout=2)
"""
SLEEP = "def main(s, v=None):\n    import time\n    time.sleep(s)\n    return v\n"


def tracker_placements(nodes_root: Path, cluster) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """The tracker's (placements granted, placement requests answered)."""
    import asyncio

    async def go() -> tuple[int, int]:
        client = member_client(cluster.peers[0].data_dir)
        try:
            st = await client.request(cluster.tracker_address, "GET", "/v1/status")
            return int(st["placements_served"]), int(st["placement_requests"])
        finally:
            await client.close()

    return asyncio.run(go())


def test_a_task_returns_every_result_field(nodes: Nodes) -> None:
    cluster = nodes.cluster(3)
    ids = {p.info["peer_id"] for p in cluster.peers}
    with Client(data_dir=cluster.peers[0].data_dir) as client:
        r = client.run_program(SQUARE, "main", [5])
        assert (r.status, r.result, r.error, r.attempts) == ("DONE", 25, None, 1)
        assert r.peer_id in ids and r.origin == cluster.peers[0].info["peer_id"]
        assert r.execution_time is not None and r.execution_time >= 0
        assert r.waiting_time is not None and r.waiting_time >= 0
        assert r.turnaround_time is not None
        assert r.turnaround_time >= r.execution_time
        name = "f" * 250  # the protocol allows 256 characters; a process name has 200
        long = client.run_program(f"def {name}(x):\n    return x\n", name, [2])
        assert (long.status, long.result) == ("DONE", 2), long.error


def test_non_confidential_tasks_spread_over_peers(nodes: Nodes) -> None:
    cluster = nodes.cluster(3)
    with Client(data_dir=cluster.peers[0].data_dir) as client:
        ids = client.submit_requests(
            [
                peeros.protocol.TaskRequest(program=SQUARE, function="main", args=[i])
                for i in range(6)
            ]
        )
        results = client.results(ids)
    assert [r.result for r in results] == [i * i for i in range(6)]
    executors = {r.peer_id for r in results}
    assert executors == {p.info["peer_id"] for p in cluster.peers}  # 2 each: spread, not piled


def test_confidential_tasks_never_reach_the_tracker(nodes: Nodes) -> None:
    cluster = nodes.cluster(2)
    origin = cluster.peers[1]
    before = tracker_placements(nodes.root, cluster)
    with Client(data_dir=origin.data_dir) as client:
        results = [client.run_program(SQUARE, "main", [i], confidential=True) for i in range(3)]
    assert all(r.peer_id == origin.info["peer_id"] for r in results)
    assert tracker_placements(nodes.root, cluster) == before
    with Client(data_dir=origin.data_dir) as client:
        client.run_program(SQUARE, "main", [2])  # control: a normal task is placed
    served, requests = tracker_placements(nodes.root, cluster)
    assert requests == before[1] + 1  # one request: the task's placement (+ leases)
    assert served > before[0]


def test_json_args_of_every_type_round_trip(nodes: Nodes) -> None:
    cluster = nodes.cluster(1)
    args = [
        None,
        True,
        False,
        0,
        -7,
        2**53,
        1.5,
        "",
        "h\u00e9llo \u2603",
        [],
        [1, [2, [3]]],
        {},
        {"k": {"n": None, "l": [1.25, "x"]}},
    ]
    with Client(data_dir=cluster.peers[0].data_dir) as client:
        r = client.run_program("def main(*a):\n    return list(a)\n", "main", args)
    assert r.status == "DONE" and r.result == args


def test_callables_map_and_executor(nodes: Nodes) -> None:
    cluster = nodes.cluster(2)
    offset = 10

    def add(x: int, y: int = 0) -> int:
        return x + y + offset  # a closure over a local

    with Client(data_dir=cluster.peers[0].data_dir) as client:
        assert client.call(add, 1, y=2) == 13
        assert client.map(lambda x: x * 3, range(20)) == [x * 3 for x in range(20)]
        assert client.submit(add, 5).result(timeout=30) == 15
        with pytest.raises(TaskError, match="ZeroDivisionError") as info:
            client.call(lambda: 1 / 0)
        assert info.value.traceback and "ZeroDivisionError" in info.value.traceback

    with peeros.Executor(data_dir=cluster.peers[1].data_dir) as ex:
        futures = {ex.submit(pow, 2, i): i for i in range(8)}
        seen = {futures[f]: f.result() for f in cf.as_completed(futures, timeout=60)}
        assert seen == {i: 2**i for i in range(8)}
        done, not_done = cf.wait([ex.submit(abs, -3)], timeout=30)
        assert not not_done and next(iter(done)).result() == 3
        assert list(ex.map(str, [1, 2, 3])) == ["1", "2", "3"]


def test_a_task_error_carries_the_remote_traceback(nodes: Nodes) -> None:
    cluster = nodes.cluster(1)
    program = "def helper():\n    raise ValueError('bad input 42')\n\ndef main():\n    helper()\n"
    with Client(data_dir=cluster.peers[0].data_dir) as client:
        r = client.run_program(program, "main", [])
    assert r.status == "FAILED"
    assert r.error == "ValueError: bad input 42"
    assert r.traceback is not None and "in helper" in r.traceback and "<task>" in r.traceback


def test_timeouts_kill_the_task_and_the_peer_stays_healthy(nodes: Nodes) -> None:
    cluster = nodes.cluster(1)
    with Client(data_dir=cluster.peers[0].data_dir) as client:
        t0 = time.monotonic()
        r = client.run_program(SLEEP, "main", [30], timeout=1, confidential=True)
        assert r.status == "TIMED_OUT" and "timed out after 1s" in (r.error or "")
        assert time.monotonic() - t0 < 10
        r = client.run_program(SPIN, "main", [60], timeout=1, confidential=True)
        assert r.status == "TIMED_OUT"
        assert client.run_program(SQUARE, "main", [7]).result == 49


@pytest.mark.parametrize(
    ("program", "fragment"),
    [
        ("def main():\n    open('{secret}').read()\n", "No such file or directory"),
        (NET, "Error"),
        (FORK_BOMB, "BlockingIOError"),
        ("def main():\n    open('/usr/evil', 'w')\n", "Read-only file system"),
        ("def main():\n    return bytearray(3 << 30)\n", "MemoryError"),
    ],
    ids=["read-peer-token", "network", "fork-bomb", "write-outside", "memory-hog"],
)
def test_tasks_are_contained(nodes: Nodes, program: str, fragment: str) -> None:
    cluster = nodes.cluster(1)
    peer = cluster.peers[0]
    port = peer.info["api_url"].rsplit(":", 1)[1]
    source = program.format(secret=peer.data_dir / "api.token", port=port)
    with Client(data_dir=peer.data_dir) as client:
        r = client.run_program(source, "main", [], memory_mb=256, confidential=True)
        assert r.status == "FAILED", r
        assert fragment in (r.error or "") + (r.traceback or "")
        assert client.run_program(SQUARE, "main", [3], confidential=True).result == 9


def test_cancel_kills_a_running_task_and_frees_its_cpu_within_a_second(nodes: Nodes) -> None:
    import psutil

    cluster = nodes.cluster(1)
    peer = cluster.peers[0]
    proc = psutil.Process(peer.pid)

    seen: dict[int, psutil.Process] = {}

    def busy_pids() -> set[int]:
        """Sandbox processes of this peer that burnt CPU since the previous call."""
        found = set()
        for child in proc.children(recursive=True):
            p = seen.setdefault(child.pid, child)  # cpu_percent compares with the last call
            try:
                if p.cpu_percent(interval=None) > 50:
                    found.add(p.pid)
            except psutil.NoSuchProcess:
                pass
        return found

    with Client(data_dir=peer.data_dir) as client:
        (task_id,) = client.submit_requests(
            [
                peeros.protocol.TaskRequest(
                    program=SPIN, function="main", args=[120], confidential=True
                )
            ]
        )
        wait_until(lambda: client.task(task_id).status == "RUNNING")
        spinning = wait_until(busy_pids, interval=0.2)
        t0 = time.monotonic()
        resp = client.cancel(task_id)
        assert resp.cancelled and resp.status == "CANCELLED"
        wait_until(
            lambda: (
                not any(
                    psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
                    for p in spinning
                )
            ),
            timeout=5,
            interval=0.01,
        )
        assert time.monotonic() - t0 < 1.0
        assert client.task(task_id).status == "CANCELLED"
        assert client.cancel(task_id).cancelled is False
        assert client.run_program(SQUARE, "main", [4], confidential=True).result == 16


def test_round_robin_slices_three_tasks_on_one_slot(nodes: Nodes) -> None:
    cluster = nodes.cluster(
        1, peer_extra=[*FAST_PEER, "--slots", "1", "--policy", "rr", "--quantum", "50"]
    )
    with Client(data_dir=cluster.peers[0].data_dir) as client:
        ids = client.submit_requests(
            [
                peeros.protocol.TaskRequest(
                    program=SPIN, function="main", args=[0.6], confidential=True
                )
                for _ in range(3)
            ]
        )
        results = client.results(ids)
        gantt = client.sched().gantt
    assert all(r.status == "DONE" for r in results)
    stints = {i: [(s, e) for t, s, e, _slot in gantt if t == i] for i in ids}
    first_finish = min(max(e for _, e in stints[i]) for i in ids)
    for i in ids:
        assert len(stints[i]) > 1  # preempted and resumed
        assert min(s for s, _ in stints[i]) < first_finish  # everyone ran before anyone finished
    # one slot: stints never overlap
    ordered = sorted(s for i in ids for s in stints[i])
    assert all(a[1] <= b[0] + 1e-3 for a, b in itertools.pairwise(ordered))


def test_priority_orders_the_queue(nodes: Nodes) -> None:
    cluster = nodes.cluster(1, peer_extra=[*FAST_PEER, "--slots", "1", "--policy", "priority"])
    mk = peeros.protocol.TaskRequest
    with Client(data_dir=cluster.peers[0].data_dir) as client:
        client.set_sched("priority", aging=0)
        (blocker,) = client.submit_requests(
            [mk(program=SLEEP, function="main", args=[1], confidential=True)]
        )
        wait_until(lambda: client.sched().running)
        low, high = client.submit_requests(
            [
                mk(program=SQUARE, function="main", args=[1], priority=1, confidential=True),
                mk(program=SQUARE, function="main", args=[2], priority=9, confidential=True),
            ]
        )
        results = {r.task_id: r for r in client.results([blocker, low, high])}
        gantt = client.sched().gantt
    start = {t: s for t, s, _e, _slot in gantt}
    assert start[high] < start[low]
    assert all(r.status == "DONE" for r in results.values())


@pytest.mark.parametrize("aging", [0, 200])
def test_aging_lets_a_waiting_low_priority_task_overtake(nodes: Nodes, aging: int) -> None:
    """With aging the long-waiting low-priority task runs before the fresh high-priority
    ones; without it, they all go first (the starvation aging exists to prevent)."""
    cluster = nodes.cluster(1, peer_extra=[*FAST_PEER, "--slots", "1", "--policy", "priority"])
    mk = peeros.protocol.TaskRequest
    with Client(data_dir=cluster.peers[0].data_dir) as client:
        client.set_sched("priority", aging=aging)
        (blocker,) = client.submit_requests(
            [mk(program=SLEEP, function="main", args=[1.5], confidential=True)]
        )
        wait_until(lambda: client.sched().running)
        (low,) = client.submit_requests(
            [mk(program=SQUARE, function="main", args=[1], priority=0, confidential=True)]
        )
        wait_until(lambda: len(client.sched().queue) == 1)
        time.sleep(
            0.8
        )  # the low task ages while the blocker runs (this is the scenario, not a sync)
        highs = client.submit_requests(
            [
                mk(program=SQUARE, function="main", args=[2], priority=100, confidential=True)
                for _ in range(3)
            ]
        )
        client.results([blocker, low, *highs])
        start = {t: s for t, s, _e, _slot in client.sched().gantt}
    if aging:
        assert all(start[low] < start[h] for h in highs)
    else:
        assert all(start[h] < start[low] for h in highs)


def test_result_cache_hits_and_expires(nodes: Nodes) -> None:
    cluster = nodes.cluster(1, peer_extra=[*FAST_PEER, "--cache-ttl", "1.5"])
    with Client(data_dir=cluster.peers[0].data_dir) as client:
        first = client.run_program(SQUARE, "main", [9], cache=True)
        second = client.run_program(SQUARE, "main", [9], cache=True)
        other = client.run_program(SQUARE, "main", [8], cache=True)
        assert (first.cached, second.cached, other.cached) == (False, True, False)
        assert second.result == 81 and second.task_id != first.task_id
        stats = client.sched().cache
        assert stats["hits"] == 1 and stats["misses"] == 2
        wait_until(
            lambda: client.run_program(SQUARE, "main", [9], cache=True).cached is False,
            timeout=10,
            interval=0.5,
        )


def test_quota_refuses_and_queues_nothing(nodes: Nodes) -> None:
    cluster = nodes.cluster(1, peer_extra=[*FAST_PEER, "--task-quota", "3"])
    with Client(data_dir=cluster.peers[0].data_dir) as client:
        for i in range(3):
            assert client.run_program(SQUARE, "main", [i]).status == "DONE"
        before = client.history(100).stats["count"]
        with pytest.raises(QuotaExceeded, match="quota exceeded"):
            client.run_program(SQUARE, "main", [4])
        assert client.history(100).stats["count"] == before


def test_history_survives_a_peer_restart(nodes: Nodes) -> None:
    from peeros.launcher import start_peer, stop

    cluster = nodes.cluster(1)
    peer = cluster.peers[0]
    with Client(data_dir=peer.data_dir) as client:
        ids = [client.run_program(SQUARE, "main", [i]).task_id for i in range(3)]
    stop([peer])
    again = start_peer(peer.data_dir, cluster.tracker_address, None, extra=FAST_PEER)
    nodes.started.append(again)
    with Client(data_dir=peer.data_dir) as client:
        report = client.history(10)
        assert {t["task_id"] for t in report.tasks} >= set(ids)
        assert report.stats["done"] >= 3 and report.stats["success_rate"] == 1.0
        assert client.task(ids[0]).status == "DONE"


@pytest.mark.parametrize(
    ("request_fields", "fragment"),
    [
        ({"program": "def main(:\n", "function": "main"}, "invalid program source"),
        ({"program": SQUARE, "function": "nope"}, "function 'nope' is not defined"),
        ({"program": SQUARE, "function": "main", "timeout": -1}, "timeout"),
        ({"program": SQUARE, "function": "main", "args": {"x": 1}}, "args"),
        ({"function": "main"}, "needs program and function"),
        ({"payload": "***", "function": "f"}, "not valid base64"),
        (
            {"program": SQUARE, "function": "main", "confidential": True, "elsewhere": True},
            "both confidential",
        ),
    ],
)
def test_bad_tasks_are_refused_and_nothing_is_queued(
    nodes: Nodes, request_fields: dict[str, object], fragment: str
) -> None:
    cluster = nodes.cluster(1)
    with Client(data_dir=cluster.peers[0].data_dir) as client:
        before = client.history(100).stats["count"]
        with pytest.raises(BadRequest, match=fragment):
            client._run(client._async.request("POST", "/v1/tasks", request_fields))
        assert client.history(100).stats["count"] == before
        assert client.sched().queue == []
        with pytest.raises(BadRequest, match="unknown policy"):
            client.set_sched("lottery")
        assert client.sched().policy == "fcfs"


def test_a_batch_with_one_bad_task_queues_nothing(nodes: Nodes) -> None:
    cluster = nodes.cluster(1)
    with Client(data_dir=cluster.peers[0].data_dir) as client:
        before = client.history(100).stats["count"]
        good = {"program": SQUARE, "function": "main", "args": [1]}
        bad = {"program": SQUARE, "function": "missing"}
        with pytest.raises(BadRequest, match="task 1: function 'missing'"):
            client._run(client._async.request("POST", "/v1/tasks/batch", {"tasks": [good, bad]}))
        assert client.history(100).stats["count"] == before


def test_sched_simulate_through_the_api(nodes: Nodes) -> None:
    cluster = nodes.cluster(1)
    spec = {
        "policy": "fcfs",
        "jobs": [
            {"name": "P1", "arrival": 0, "burst": 24},
            {"name": "P2", "arrival": 0, "burst": 3},
            {"name": "P3", "arrival": 0, "burst": 3},
        ],
    }
    with Client(data_dir=cluster.peers[0].data_dir) as client:
        assert client.simulate(spec)["avg_waiting"] == 17
        with pytest.raises(BadRequest, match="policy"):
            client.simulate({**spec, "policy": "nope"})
    assert json.dumps(spec)


def test_bad_query_parameters_are_named(nodes: Nodes) -> None:
    cluster = nodes.cluster(1)
    with Client(data_dir=cluster.peers[0].data_dir) as client:
        req = client._async.request
        with pytest.raises(BadRequest, match="limit must be an integer"):
            client._run(req("GET", "/v1/history?limit=abc"))
        with pytest.raises(BadRequest, match="limit must be between 1 and 10000"):
            client._run(req("GET", "/v1/history?limit=0"))
        body = {"program": SQUARE, "function": "main", "args": [2]}
        with pytest.raises(BadRequest, match="wait must be between 0 and 60"):
            client._run(req("POST", "/v1/tasks?wait=999", body))
        before = client.history(100).stats["count"]
        assert before == 0  # the refused submission queued nothing
        done = client._run(req("POST", "/v1/tasks?wait=10", body))
        assert done["results"][0]["result"] == 4  # answered in the same round trip
