"""IPC on real peers: queues and semaphores hosted on one peer, used from others.

One 3-peer cluster serves the whole module (each test uses its own object names and
host peer): A for semaphores and bad input, B hosts the cross-peer queue, C broadcasts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from peeros import Client
from peeros.errors import BadRequest, Conflict, NotFound, PeerOSError, Timeout
from peeros.launcher import LocalCluster
from tests.conftest import Nodes, wait_until


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    nodes = Nodes(Path(tmp_path_factory.mktemp("ipc")))
    try:
        c = nodes.cluster(3)
        with Client(data_dir=c.peers[0].data_dir) as client:
            wait_until(lambda: len(client.peers()) == 3)
        yield c
    finally:
        nodes.stop_all()


def peer_id(cluster: LocalCluster, i: int) -> str:
    pid: str = cluster.peers[i].info["peer_id"]
    return pid


class Worker(threading.Thread):
    """Runs ``body(client)`` with its own Client; keeps the result or the error."""

    def __init__(self, data_dir: Path, body: Callable[[Client], Any]) -> None:
        super().__init__(daemon=True)
        self.data_dir, self.body = data_dir, body
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with Client(data_dir=self.data_dir) as client:
                self.result = self.body(client)
        except BaseException as exc:
            self.error = exc

    def outcome(self, timeout: float = 60) -> Any:
        self.join(timeout)
        assert not self.is_alive(), "worker still blocked"
        if self.error is not None:
            raise self.error
        return self.result


def test_bounded_queue_across_three_peers_delivers_each_item_once_in_order(
    cluster: LocalCluster,
) -> None:
    a, b, c = (p.data_dir for p in cluster.peers)
    host = peer_id(cluster, 1)
    with Client(data_dir=a) as client:
        info = client.ipc.on(host).queue_create("buf", capacity=5)
        assert (info.capacity, info.length, info.peer_id) == (5, 0, host)

    def produce(client: Client) -> list[str]:
        return [client.ipc.on(host).send("buf", {"i": i}).status for i in range(100)]

    def consume(client: Client) -> list[Any]:
        return [client.ipc.on(host).recv("buf").message["i"] for _ in range(100)]

    producer, consumer = Worker(a, produce), Worker(c, consume)
    producer.start()
    with Client(data_dir=b) as local:  # the producer fills the queue, then blocks on it
        wait_until(lambda: local.ipc.queue_list()[0].senders, timeout=30)
        assert local.ipc.queue_list()[0].length == 5
    consumer.start()
    assert consumer.outcome() == list(range(100))
    assert set(producer.outcome()) <= {"queued", "delivered"}
    with Client(data_dir=b) as local:
        (q,) = local.ipc.queue_list()
        assert (q.length, q.receivers, q.senders) == (0, [], [])
        local.ipc.delete("buf")


def test_semaphore_wakes_waiters_in_fifo_order_and_undo_frees_units(
    cluster: LocalCluster,
) -> None:
    a, b = cluster.peers[0].data_dir, cluster.peers[1].data_dir
    host = peer_id(cluster, 0)
    with Client(data_dir=a) as client:
        client.ipc.sem_create("turns", value=0)
        waiters = []
        for i in range(3):  # from another peer, each queued before the next starts
            w = Worker(b, lambda c, i=i: c.ipc.on(host).sem_wait("turns", party=f"w{i}").party)
            w.start()
            waiters.append(w)
            wait_until(lambda i=i: len(client.ipc.sem_list()[0].waiters) == i + 1)
        assert client.ipc.sem_list()[0].waiters == ["w0", "w1", "w2"]
        for i, w in enumerate(waiters):
            assert client.ipc.sem_signal("turns").granted == [f"w{i}"]
            assert w.outcome() == f"w{i}"
        (sem,) = client.ipc.sem_list()
        assert (sem.value, sem.waiters) == (0, [])

        # SEM_UNDO: a holder that dies gives its unit to the next waiter
        client.ipc.sem_create("lock", value=1, binary=True)
        client.ipc.sem_wait("lock", party="task-1")
        blocked = Worker(a, lambda c: c.ipc.sem_wait("lock", party="task-2").party)
        blocked.start()
        wait_until(lambda: client.ipc.list().semaphores[0].waiters == ["task-2"])
        assert client.ipc.undo("task-1").granted == [("lock", "task-2")]
        assert blocked.outcome() == "task-2"
        assert client.ipc.list().semaphores[0].holders == {"task-2": 1}
        for name in ("turns", "lock"):
            client.ipc.delete(name)


def test_timeouts_are_clear_errors_and_leave_no_waiter_behind(cluster: LocalCluster) -> None:
    a = cluster.peers[0].data_dir
    remote = peer_id(cluster, 1)
    with Client(data_dir=a) as client:
        client.ipc.sem_create("t-sem", value=0)
        with pytest.raises(Timeout, match=r"timed out after 0.3s waiting for semaphore 't-sem'"):
            client.ipc.sem_wait("t-sem", timeout=0.3)
        with pytest.raises(Timeout):
            client.ipc.sem_wait("t-sem", timeout=0)
        assert client.ipc.sem_list()[0].waiters == []

        on_b = client.ipc.on(remote)  # through two hops, the error keeps its kind
        on_b.queue_create("t-q", capacity=1)
        with pytest.raises(Timeout, match=f"queue 't-q' on peer {remote}"):
            on_b.recv("t-q", timeout=0.3)
        on_b.send("t-q", "first")
        with pytest.raises(Timeout, match="room in queue 't-q'"):
            on_b.send("t-q", "second", timeout=0.3)
        (q,) = on_b.queue_list()
        assert (q.length, q.receivers, q.senders) == (1, [], [])
        assert on_b.recv("t-q", timeout=1).message == "first"  # the timed-out one is gone

        # deleting an object fails its waiters at once
        waiter = Worker(a, lambda c: c.ipc.on(remote).recv("t-q", timeout=30))
        waiter.start()
        wait_until(lambda: on_b.queue_list()[0].receivers)
        assert len(on_b.delete("t-q").woken) == 1
        with pytest.raises(NotFound, match="queue 't-q' was deleted"):
            waiter.outcome()
        client.ipc.delete("t-sem")


def test_broadcast_reaches_every_queue_on_the_peer(cluster: LocalCluster) -> None:
    c = cluster.peers[2].data_dir
    with Client(data_dir=c) as client:
        for name in ("inbox-1", "inbox-2", "inbox-3"):
            client.ipc.queue_create(name, capacity=1)
        listener = Worker(c, lambda cl: cl.ipc.recv("inbox-1"))
        listener.start()
        wait_until(lambda: client.ipc.queue_list()[0].receivers)
        sent = client.ipc.send("*", {"all": True}, party="announcer")
        assert (sent.status, sent.queues) == ("broadcast", ["inbox-1", "inbox-2", "inbox-3"])
        got = listener.outcome()
        assert (got.message, got.sender) == ({"all": True}, "announcer")
        assert [q.length for q in client.ipc.queue_list()] == [0, 1, 1]
        # all or nothing: inbox-2 is full, so nobody gets the second broadcast
        with pytest.raises(Conflict, match=r"\['inbox-2', 'inbox-3'\] are full"):
            client.ipc.send("*", "again")
        assert [q.length for q in client.ipc.queue_list()] == [0, 1, 1]
        assert client.ipc.recv("inbox-3").message == {"all": True}
        for name in ("inbox-1", "inbox-2", "inbox-3"):
            client.ipc.delete(name)


def test_bad_input_is_refused_clearly_and_changes_nothing(cluster: LocalCluster) -> None:
    a = cluster.peers[0].data_dir
    host = peer_id(cluster, 0)
    with Client(data_dir=a) as client:
        ipc = client.ipc
        ipc.sem_create("bin", value=1, binary=True)
        ipc.queue_create("box", capacity=2)
        before = ipc.list()
        cases: list[tuple[Callable[[], Any], type[PeerOSError], str]] = [
            (lambda: ipc.sem_create("neg", value=-1), BadRequest, "value"),
            (lambda: ipc.sem_create("two", value=2, binary=True), BadRequest, "0 or 1"),
            (lambda: ipc.queue_create("zero", capacity=0), BadRequest, "capacity"),
            (lambda: ipc.queue_create("bad name"), BadRequest, "name"),
            (lambda: ipc.sem_wait("ghost", timeout=1), NotFound, f"'ghost' on peer {host}"),
            (lambda: ipc.sem_signal("box"), NotFound, "no semaphore 'box'"),
            (lambda: ipc.recv("bin", timeout=1), NotFound, "(it is a semaphore)"),
            (lambda: ipc.delete("ghost"), NotFound, "ghost"),
            (lambda: ipc.sem_create("bin", value=0), Conflict, "'bin' already exists"),
            (lambda: ipc.queue_create("bin"), Conflict, "already exists"),
            (lambda: ipc.sem_signal("bin"), Conflict, "already free"),
            (lambda: ipc.sem_wait("bin", timeout=-1), BadRequest, "timeout"),
            (lambda: ipc.on("not a peer").list(), BadRequest, "peer id or HOST:PORT"),
            (lambda: ipc.on("a" * 26).list(), NotFound, "no peer"),
        ]
        for call, cls, text in cases:
            with pytest.raises(cls) as info:
                call()
            assert text in info.value.message, info.value.message
            assert ipc.list() == before
        with pytest.raises(NotFound, match="no IPC operation 'nope'"):
            client._run(client._async.request("POST", "/v1/ipc/nope", {}))
        ipc.delete("bin")
        ipc.delete("box")
