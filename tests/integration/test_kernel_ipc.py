"""Tasks on different peers synchronising through IPC: deadlock and the bounded buffer."""

from __future__ import annotations

import peeros
from peeros import Client
from tests.conftest import Nodes, wait_until

LOCKER = """
from peeros import task

def main(first, second, host):
    task.sem_wait(first, on=host)
    task.sem_wait("go", on=host)     # both hold their first lock before going on
    task.sem_wait(second, on=host)
    task.sem_signal(second, on=host)
    task.sem_signal(first, on=host)
    return "finished"
"""

PRODUCER = """
from peeros import task

def main(n, host):
    for i in range(n):
        task.sem_wait("empty", on=host)
        task.send("buf", {"item": i}, on=host)
        task.sem_signal("full", on=host)
    return n
"""

CONSUMER = """
from peeros import task

def main(n, host):
    got = []
    for _ in range(n):
        task.sem_wait("full", on=host)
        got.append(task.recv("buf", on=host)["item"])
        task.sem_signal("empty", on=host)
    return got
"""


def test_opposite_lock_order_deadlocks_and_a_victim_breaks_it(nodes: Nodes) -> None:
    cluster = nodes.cluster(3)
    host, p1, p2 = cluster.peers
    hid = host.info["peer_id"]
    with (
        Client(data_dir=host.data_dir) as ch,
        Client(data_dir=p1.data_dir) as c1,
        Client(data_dir=p2.data_dir) as c2,
    ):
        ch.ipc.sem_create("s1", 1, binary=True)
        ch.ipc.sem_create("s2", 1, binary=True)
        ch.ipc.sem_create("go", 0)
        (t1,) = c1.submit_requests(
            [
                peeros.protocol.TaskRequest(
                    program=LOCKER, function="main", args=["s1", "s2", hid], confidential=True
                )
            ]
        )
        (t2,) = c2.submit_requests(
            [
                peeros.protocol.TaskRequest(
                    program=LOCKER, function="main", args=["s2", "s1", hid], confidential=True
                )
            ]
        )

        def waiting_to_go() -> bool:
            go = next(s for s in ch.ipc.sem_list() if s.name == "go")
            return set(go.waiters) == {t1, t2}

        wait_until(waiting_to_go)
        ch.ipc.sem_signal("go")
        ch.ipc.sem_signal("go")
        report = wait_until(lambda: (r := ch.kernel.deadlock())["deadlocked"] and r, timeout=20)
        assert sorted(report["deadlocked"]) == sorted([t1, t2])
        assert sorted(report["cycles"][0]) == sorted([t1, t2])
        # both tasks are WAITING in the process tree, on other peers than the host
        procs = {p["pid"]: p for p in ch.kernel.processes()["processes"]}
        assert procs[t1]["state"] == procs[t2]["state"] == "WAITING"
        ch.kernel.resolve(t1)  # kill a victim: its lock is given back (SEM_UNDO)
        assert c1.results([t1])[0].status == "CANCELLED"
        assert c2.results([t2])[0].result == "finished"
        assert ch.kernel.deadlock()["deadlocked"] == []


def test_producer_and_consumer_on_two_peers_deliver_each_item_once_in_order(nodes: Nodes) -> None:
    cluster = nodes.cluster(3)
    host, p1, p2 = cluster.peers
    hid = host.info["peer_id"]
    n = 40
    with (
        Client(data_dir=host.data_dir) as ch,
        Client(data_dir=p1.data_dir) as c1,
        Client(data_dir=p2.data_dir) as c2,
    ):
        ch.ipc.queue_create("buf", capacity=3)
        ch.ipc.sem_create("empty", 3)
        ch.ipc.sem_create("full", 0)
        (consumer,) = c2.submit_requests(
            [
                peeros.protocol.TaskRequest(
                    program=CONSUMER, function="main", args=[n, hid], confidential=True, timeout=120
                )
            ]
        )
        (producer,) = c1.submit_requests(
            [
                peeros.protocol.TaskRequest(
                    program=PRODUCER, function="main", args=[n, hid], confidential=True, timeout=120
                )
            ]
        )
        got = c2.results([consumer])[0]
        assert got.status == "DONE", got
        assert got.result == list(range(n))
        assert c1.results([producer])[0].result == n
        queues = ch.ipc.queue_list()
        assert [q.length for q in queues if q.name == "buf"] == [0]
