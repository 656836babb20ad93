"""Pipelining: under FCFS a busy worker is handed its next tasks ahead of time.

Real peers and real sandboxed workers. Each test would fail without the mechanism it
names: the queued tasks' presence, the revoke that takes a task back from a worker whose
current task blocks (else: deadlock), and the requeue of tasks queued on a worker that
dies (else: they would fail with their worker).
"""

from __future__ import annotations

import peeros
from peeros import Client
from tests.conftest import FAST_PEER, Nodes, wait_until

SQUARE = "def main(x):\n    return x * x\n"
SLEEP = "def main(s, v=None):\n    import time\n    time.sleep(s)\n    return v\n"
WAITER = """
from peeros import task

def main(name):
    task.sem_wait(name)
    return "woken"
"""
POSTER = """
from peeros import task

def main(name):
    task.sem_signal(name)
    return "posted"
"""

mk = peeros.protocol.TaskRequest


def one_slot(nodes: Nodes) -> Client:
    cluster = nodes.cluster(1, peer_extra=[*FAST_PEER, "--slots", "1"])
    return Client(data_dir=cluster.peers[0].data_dir)


def test_a_busy_worker_holds_its_next_tasks_and_runs_them_in_fcfs_order(nodes: Nodes) -> None:
    with one_slot(nodes) as client:
        ids = client.submit_requests(
            [mk(program=SLEEP, function="main", args=[1.0, "first"], confidential=True)]
            + [
                mk(program=SQUARE, function="main", args=[i], confidential=True)
                for i in range(1, 4)
            ]
        )
        state = wait_until(lambda: client.sched())
        running = wait_until(lambda: client.sched().running)
        assert running[0]["task_id"] == ids[0]
        assert running[0]["next"] == ids[1:3]  # two handed ahead (pipeline depth 2)
        handed = [q["task_id"] for q in client.sched().queue if q.get("handed_to_worker")]
        assert handed == ids[1:3]
        results = client.results(ids)
        assert [r.result for r in results] == ["first", 1, 4, 9]
        gantt = [g for g in client.sched().gantt if g[0] in ids]
        assert [g[0] for g in sorted(gantt, key=lambda g: g[1])] == ids
        assert state.policy == "fcfs"


def test_a_task_queued_behind_one_that_blocks_is_taken_back_and_runs(nodes: Nodes) -> None:
    """The poster sits in the waiter's worker pipe when the waiter blocks on the
    semaphore only the poster signals: without the revoke, neither ever finishes."""
    with one_slot(nodes) as client:
        client.ipc.sem_create("gate", 0)
        waiter, poster = client.submit_requests(
            [
                mk(program=WAITER, function="main", args=["gate"], confidential=True),
                mk(program=POSTER, function="main", args=["gate"], confidential=True),
            ]
        )
        results = client.results([waiter, poster])
        assert [(r.status, r.result) for r in results] == [("DONE", "woken"), ("DONE", "posted")]
        assert client.sched().workers["crashed"] == 0


def test_tasks_queued_on_a_worker_that_is_killed_run_elsewhere(nodes: Nodes) -> None:
    with one_slot(nodes) as client:
        ids = client.submit_requests(
            [mk(program=SLEEP, function="main", args=[30], timeout=1, confidential=True)]
            + [
                mk(program=SQUARE, function="main", args=[i], confidential=True)
                for i in range(2, 5)
            ]
        )
        wait_until(lambda: client.sched().running and client.sched().running[0]["next"])
        results = client.results(ids)
        assert results[0].status == "TIMED_OUT"
        assert [(r.status, r.result) for r in results[1:]] == [
            ("DONE", 4),
            ("DONE", 9),
            ("DONE", 16),
        ]


def test_cancelling_a_task_handed_to_a_worker_keeps_it_from_running(nodes: Nodes) -> None:
    with one_slot(nodes) as client:
        first, second, third = client.submit_requests(
            [
                mk(program=SLEEP, function="main", args=[1.5, "a"], confidential=True),
                mk(program=SLEEP, function="main", args=[0, "b"], confidential=True),
                mk(program=SQUARE, function="main", args=[3], confidential=True),
            ]
        )
        wait_until(lambda: second in client.sched().running[0]["next"])
        assert client.cancel(second).cancelled
        results = client.results([first, second, third])
        assert [(r.status, r.result) for r in results] == [
            ("DONE", "a"),
            ("CANCELLED", None),
            ("DONE", 9),
        ]
        sched = client.sched()
        assert second not in {g[0] for g in sched.gantt}  # it never ran
        assert sched.workers["killed"] == 0  # taken back, not killed with its worker


def test_pipeline_zero_hands_nothing_ahead_and_other_policies_never_do(nodes: Nodes) -> None:
    cluster = nodes.cluster(1, peer_extra=[*FAST_PEER, "--slots", "1", "--pipeline", "0"])
    with Client(data_dir=cluster.peers[0].data_dir) as client:
        assert client.sched().pipeline == 0
        ids = client.submit_requests(
            [mk(program=SLEEP, function="main", args=[0.5], confidential=True)]
            + [mk(program=SQUARE, function="main", args=[2], confidential=True)] * 2
        )
        wait_until(lambda: client.sched().running)
        state = client.sched()
        assert state.running[0]["next"] == [] and len(state.queue) == 2
        assert [r.result for r in client.results(ids)] == [None, 4, 4]
        client.set_sched("priority")
        assert client.sched().pipeline == 0


def test_switching_away_from_fcfs_takes_the_handed_tasks_back(nodes: Nodes) -> None:
    """Handed under FCFS, then the policy becomes priority: a later high-priority task
    must overtake them, which it can only if they were taken back from the worker."""
    with one_slot(nodes) as client:
        first, *handed = client.submit_requests(
            [mk(program=SLEEP, function="main", args=[1.5, "first"], confidential=True)]
            + [mk(program=SQUARE, function="main", args=[i], confidential=True) for i in (2, 3)]
        )
        wait_until(lambda: client.sched().running and client.sched().running[0]["next"])
        client.set_sched("priority")
        (urgent,) = client.submit_requests(
            [mk(program=SQUARE, function="main", args=[9], priority=100, confidential=True)]
        )
        results = client.results([first, *handed, urgent])
        assert [r.result for r in results] == ["first", 4, 9, 81]
        start = {t: s for t, s, _e, _slot in client.sched().gantt}
        assert all(start[urgent] < start[h] for h in handed)


def test_a_worker_holds_more_tasks_ahead_when_they_are_known_to_be_short(nodes: Nodes) -> None:
    """Tasks declared (or learned) to be short are handed deeper than ``--pipeline``:
    eight tasks of 0.5 ms cover the hand-over budget, and they still run in FCFS order."""
    with one_slot(nodes) as client:
        ids = client.submit_requests(
            [mk(program=SLEEP, function="main", args=[1.0, "first"], confidential=True)]
            + [
                mk(
                    program=SQUARE,
                    function="main",
                    args=[i],
                    expected_time=0.0005,
                    confidential=True,
                )
                for i in range(1, 11)
            ]
        )
        running = wait_until(lambda: client.sched().running)
        assert running[0]["task_id"] == ids[0]
        assert running[0]["next"] == ids[1:9]  # pipeline is 2, but these are short
        handed = [q["task_id"] for q in client.sched().queue if q.get("handed_to_worker")]
        assert handed == ids[1:9]
        results = client.results(ids)
        assert [r.result for r in results] == ["first", *(i * i for i in range(1, 11))]
        gantt = [g for g in client.sched().gantt if g[0] in ids]
        assert [g[0] for g in sorted(gantt, key=lambda g: g[1])] == ids
