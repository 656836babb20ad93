"""Semaphores and message queues, specified by Dijkstra (EWD 123), Silberschatz et al.,
OSC 10e §6.6 (semaphores with a waiting list), §7.1.1 (bounded buffer) and §3.6.3
(bounded-capacity message passing), and SysV ``semop`` SEM_UNDO."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peeros import errors
from peeros.kernel.ipc import (
    DuplicateIpc,
    InvalidIpc,
    IpcConflict,
    IpcRegistry,
    MessageQueue,
    RecvResult,
    Semaphore,
    SendResult,
    UnknownIpc,
)

# --- the bounded buffer, OSC §7.1.1 -------------------------------------------------------

Step = tuple[str, str]  # ("wait" | "signal", semaphore) or ("put" | "get", "")


def producer(items: list[int]) -> Iterator[Step]:
    for _ in items:
        yield ("wait", "empty")
        yield ("wait", "mutex")
        yield ("put", "")
        yield ("signal", "mutex")
        yield ("signal", "full")


def consumer(count: int) -> Iterator[Step]:
    for _ in range(count):
        yield ("wait", "full")
        yield ("wait", "mutex")
        yield ("get", "")
        yield ("signal", "mutex")
        yield ("signal", "empty")


def run_bounded_buffer(n: int, items: list[int], choices: list[int]) -> list[int]:
    """Run OSC Fig. 7.1/7.2 with ``choices`` picking which runnable process steps next."""
    reg = IpcRegistry()
    reg.create_semaphore("mutex", 1, binary=True)
    reg.create_semaphore("empty", n)
    reg.create_semaphore("full", 0)
    buffer: list[int] = []
    consumed: list[int] = []
    to_put = iter(items)
    procs = {"P": producer(items), "C": consumer(len(items))}
    blocked: set[str] = set()
    pending: dict[str, Step | None] = {name: next(gen) for name, gen in procs.items()}
    turn = 0
    while any(pending.values()):
        runnable = sorted(p for p, step in pending.items() if step and p not in blocked)
        assert runnable, f"deadlock with {pending}"
        who = runnable[choices[turn % len(choices)] % len(runnable)] if choices else runnable[0]
        turn += 1
        step = pending[who]
        assert step is not None
        op, sem = step
        if op == "wait" and not reg.semaphore(sem).wait(who):
            blocked.add(who)
        elif op == "signal":
            blocked -= set(reg.semaphore(sem).signal(who))
        elif op == "put":
            buffer.append(next(to_put))
            assert len(buffer) <= n
        elif op == "get":
            consumed.append(buffer.pop(0))
        pending[who] = next(procs[who], None)
        assert all(s.value >= 0 for s in reg.semaphores())
    assert reg.semaphore("empty").value == n and reg.semaphore("full").value == 0
    assert reg.wait_edges() == []
    return consumed


def test_bounded_buffer_with_semaphores_delivers_every_item_once_in_order() -> None:
    assert run_bounded_buffer(3, list(range(20)), []) == list(range(20))
    # the producer runs ahead until "empty" blocks it after n items
    assert run_bounded_buffer(2, list(range(10)), [0] * 7 + [1] * 100) == list(range(10))


@given(st.integers(1, 4), st.lists(st.integers(0, 1), min_size=1, max_size=60))
def test_bounded_buffer_any_interleaving(n: int, choices: list[int]) -> None:
    items = list(range(12))
    assert run_bounded_buffer(n, items, choices) == items


def test_bounded_queue_step_by_step() -> None:
    q = MessageQueue("buf", 2)
    assert q.receive("C1") == RecvResult("wait")  # empty: the receiver waits
    assert q.send("P", "a") == SendResult("delivered", "C1")  # straight to the waiter
    assert q.send("P", "b") == SendResult("queued")
    assert q.send("P", "c") == SendResult("queued")
    assert q.send("P2", "d") == SendResult("wait")  # full: the sender waits
    assert q.snapshot() == {
        "name": "buf",
        "capacity": 2,
        "length": 2,
        "receivers": [],
        "senders": ["P2"],
    }
    assert q.receive("C") == RecvResult("received", "b", "P", released="P2")
    assert q.receive("C") == RecvResult("received", "c", "P")
    assert q.receive("C") == RecvResult("received", "d", "P2")
    assert q.receive("C") == RecvResult("wait")
    assert len(q) == 0 and q.waiters() == ["C"]


# --- semaphores -------------------------------------------------------------------------


def test_waiters_wake_in_fifo_order() -> None:
    s = Semaphore("s", 0)
    assert [s.wait(w) for w in ("a", "b", "c")] == [False, False, False]
    assert s.waiters() == ["a", "b", "c"]
    assert [s.signal("x") for _ in range(3)] == [["a"], ["b"], ["c"]]
    # x holds nothing, so each signal returned the oldest outstanding unit first
    assert s.value == 0 and s.holders() == {"c": 1}


def test_no_barging_a_signal_goes_to_the_queued_waiter_not_a_newcomer() -> None:
    s = Semaphore("s", 1)
    assert s.wait("A") is True
    assert s.wait("B") is False
    assert s.signal("A") == ["B"]  # handed over: the value never becomes 1
    assert s.value == 0 and s.holders() == {"B": 1}
    assert s.wait("C") is False  # the newcomer queues
    s2 = Semaphore("s2", 2)
    assert s2.wait("A") and s2.wait("B") and s2.value == 0
    assert s2.wait("X") is False and s2.wait("Y") is False
    assert s2.signal("A") == ["X"] and s2.wait("Z") is False  # Y is ahead of Z


def test_counting_semaphore_holders_and_unowned_signals() -> None:
    s = Semaphore("pool", 3)
    assert s.wait("A") and s.wait("A") and s.wait("B")
    assert s.holders() == {"A": 2, "B": 1} and s.value == 0
    assert s.signal("B") == [] and s.holders() == {"A": 2}  # B's own unit
    assert s.signal("Z") == [] and s.holders() == {"A": 1}  # else the oldest unit
    assert s.signal("Z") == [] and s.signal("Z") == []  # none outstanding: a new unit
    assert s.value == 4 and s.holders() == {}


def test_binary_semaphore_never_exceeds_one() -> None:
    m = Semaphore("m", 1, binary=True)
    with pytest.raises(IpcConflict, match="'m' is already free"):
        m.signal("A")
    assert m.snapshot()["value"] == 1
    assert m.wait("A") and not m.wait("B")
    assert m.signal("anyone") == ["B"]  # unowned: any party may signal
    assert m.signal("B") == [] and m.value == 1
    e = Semaphore("event", 0, binary=True)
    assert e.signal("S") == [] and e.value == 1  # starts taken: a signal frees it
    with pytest.raises(IpcConflict):
        e.signal("S")
    with pytest.raises(InvalidIpc, match="binary semaphore starts at 0 or 1"):
        Semaphore("b", 2, binary=True)


def test_undo_gives_back_every_unit_and_wakes_waiters_fifo() -> None:
    s = Semaphore("s", 2)
    assert s.wait("dead") and s.wait("dead")
    assert not s.wait("B") and not s.wait("C") and not s.wait("dead")
    assert s.undo("dead") == ["B", "C"]  # it also left the queue
    assert s.holders() == {"B": 1, "C": 1} and s.waiters() == [] and s.value == 0
    assert s.undo("nobody") == []
    reg = IpcRegistry()
    reg.create_semaphore("lock", 1, binary=True)
    q = reg.create_queue("q", 1)
    reg.semaphore("lock").wait("T1")
    reg.semaphore("lock").wait("T2")
    q.receive("T1")
    assert reg.undo("T1") == [("lock", "T2")] and q.waiters() == []


def test_timeouts_cancel_leaves_the_queue_in_order() -> None:
    s = Semaphore("s", 0)
    for w in ("a", "b", "c"):
        s.wait(w)
    assert s.cancel("b") is True and s.cancel("b") is False and s.cancel("zz") is False
    assert s.signal("x") == ["a"] and s.signal("x") == ["c"] and s.waiters() == []
    q = MessageQueue("q", 1)
    q.send("P1", 1)
    assert q.send("P2", 2).status == "wait" and q.cancel("P2") is True  # message withdrawn
    assert q.receive("C") == RecvResult("received", 1, "P1")
    assert q.receive("C2").status == "wait" and q.cancel("C2") is True
    assert q.send("P3", 3) == SendResult("queued")


def test_a_party_waits_at_most_once_per_object() -> None:
    s = Semaphore("s", 0)
    s.wait("a")
    with pytest.raises(IpcConflict, match="a is already waiting on semaphore 's'"):
        s.wait("a")
    q = MessageQueue("q", 1)
    q.receive("r")
    with pytest.raises(IpcConflict):
        q.receive("r")
    assert s.waiters() == ["a"] and q.waiters() == ["r"]


@given(
    st.integers(0, 3),
    st.booleans(),
    st.lists(st.tuples(st.sampled_from(["wait", "signal", "cancel", "undo"]), st.integers(0, 3))),
)
def test_semaphore_invariants(initial: int, binary: bool, ops: list[tuple[str, int]]) -> None:
    """value >= 0; value == initial + signals + units_undone - acquisitions; value > 0 only
    with nobody waiting; grants follow queue order; a binary semaphore has <= 1 unit."""
    initial = min(initial, 1) if binary else initial
    s = Semaphore("s", initial, binary)
    signals = undone = acquired = 0
    for op, i in ops:
        party = f"p{i}"
        queue_before = s.waiters()
        try:
            if op == "wait":
                acquired += s.wait(party)
            elif op == "signal":
                granted = s.signal(party)
                signals += 1
            elif op == "cancel":
                s.cancel(party)
            else:
                undone += s.holders().get(party, 0)
                granted = s.undo(party)
        except IpcConflict:
            assert s.waiters() == queue_before
            continue
        if op in ("signal", "undo"):
            acquired += len(granted)
            fifo = [w for w in queue_before if w != party or op == "signal"]
            assert granted == fifo[: len(granted)]
        assert s.value >= 0
        assert s.value == initial + signals + undone - acquired
        assert s.value == 0 or not s.waiters()
        if binary:
            assert s.value + sum(s.holders().values()) <= 1


# --- the registry -------------------------------------------------------------------------


def test_broadcast_sends_a_copy_to_every_queue_all_or_nothing() -> None:
    reg = IpcRegistry(" on peer X")
    a, b = reg.create_queue("a", 1), reg.create_queue("b", 2)
    reg.create_semaphore("s", 0)
    a.receive("R")
    msg: dict[str, Any] = {"k": [1]}
    assert reg.broadcast("S", msg) == {"a": SendResult("delivered", "R"), "b": SendResult("queued")}
    got = b.receive("R2")
    assert got.message == msg and got.message is not msg  # a copy
    reg.broadcast("S", "x")  # a: queued (now full), b: queued
    before = reg.snapshot()
    with pytest.raises(IpcConflict, match=r"queue\(s\) \['a'\] are full on peer X"):
        reg.broadcast("S", "y")
    assert reg.snapshot() == before
    assert IpcRegistry().broadcast("S", 1) == {}


def test_errors_name_the_object_map_to_http_and_change_nothing() -> None:
    reg = IpcRegistry(" on peer X")
    reg.create_semaphore("s", 1)
    reg.create_queue("q", 1)
    before = reg.snapshot()
    cases: list[tuple[Any, type[errors.PeerOSError], str]] = [
        (lambda: reg.create_semaphore("s", 0), DuplicateIpc, "semaphore named 's' already"),
        (lambda: reg.create_queue("s", 1), DuplicateIpc, "'s' already exists on peer X"),
        (lambda: reg.create_semaphore("n", -1), InvalidIpc, "value must be an integer >= 0"),
        (lambda: reg.create_queue("n", 0), InvalidIpc, "capacity must be an integer >= 1"),
        (lambda: reg.create_queue("bad name", 1), InvalidIpc, "queue name must be"),
        (lambda: reg.create_queue("*", 1), InvalidIpc, "queue name must be"),
        (lambda: reg.semaphore("nope"), UnknownIpc, "no semaphore 'nope' on peer X"),
        (lambda: reg.semaphore("q"), UnknownIpc, "(it is a queue)"),
        (lambda: reg.queue("s"), UnknownIpc, "no queue 's' on peer X (it is a semaphore)"),
        (lambda: reg.delete("nope"), UnknownIpc, "no semaphore or queue 'nope'"),
        (lambda: reg.semaphore("s").wait(""), InvalidIpc, "non-empty"),
    ]
    for call, cls, text in cases:
        with pytest.raises(cls) as info:
            call()
        assert text in info.value.message
        assert reg.snapshot() == before
    assert (InvalidIpc.status, UnknownIpc.status, DuplicateIpc.status) == (400, 404, 409)
    assert issubclass(IpcConflict, errors.Conflict)


def test_delete_returns_the_parties_that_were_waiting() -> None:
    reg = IpcRegistry()
    reg.create_semaphore("s", 0).wait("w")
    reg.create_queue("q", 1).receive("r")
    assert reg.delete("s") == ("semaphore", ["w"])
    assert reg.delete("q") == ("queue", ["r"])
    assert reg.snapshot() == {"semaphores": [], "queues": []}
    reg.create_queue("s", 1)  # the name is free again, for either kind


def test_wait_edges_for_the_wait_for_graph() -> None:
    reg = IpcRegistry()
    s1, s2 = reg.create_semaphore("s1", 1), reg.create_semaphore("s2", 1)
    assert s1.wait("A") and s2.wait("B")  # opposite order: OSC §8.7.1's deadlock
    assert not s2.wait("A") and not s1.wait("B")
    assert reg.wait_edges() == [("A", "B", "sem:s2"), ("B", "A", "sem:s1")]
    # a holder queued on the same semaphore is a fellow waiter, not who it waits for
    empty = reg.create_semaphore("empty", 2)
    empty.wait("P1"), empty.wait("P2"), empty.wait("P1"), empty.wait("P2")
    q = reg.create_queue("q", 1)
    q.receive("C")  # waits for any sender: no edge
    assert reg.wait_edges() == [("A", "B", "sem:s2"), ("B", "A", "sem:s1")]
    reg.undo("B")  # the victim: A gets s2 and waits for nobody
    assert reg.wait_edges() == [] and s2.holders() == {"A": 1}
