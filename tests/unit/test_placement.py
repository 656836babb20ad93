"""Placement: least-loaded, accounting for work placed since the last heartbeat."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from peeros.protocol import Heartbeat, Load
from peeros.tracker.placement import Candidate, choose
from peeros.tracker.registry import Registry

IDS = ["a" * 26, "b" * 26, "c" * 26, "d" * 26]


def beat(reg: Registry, peer_id: str, now: float, **load: int) -> None:
    hb = Heartbeat(address=f"127.0.0.1:{9000 + IDS.index(peer_id)}", load=Load(**load))
    reg.heartbeat(peer_id, hb, now)


def test_a_burst_within_one_heartbeat_window_spreads_evenly() -> None:
    reg = Registry(dead_after=30)
    for pid in IDS[:3]:
        beat(reg, pid, now=0, slots=2)
    chosen = Counter(reg.place(now=1).peer_id for _ in range(30))  # type: ignore[union-attr]
    assert sorted(chosen.values()) == [10, 10, 10]


def test_a_heartbeat_replaces_the_placed_estimate_with_real_load() -> None:
    reg = Registry(dead_after=30)
    beat(reg, IDS[0], now=0, slots=1)
    beat(reg, IDS[1], now=0, slots=1)
    for _ in range(4):
        reg.place(now=1)
    beat(reg, IDS[0], now=2, slots=1, running=1, queued=3)  # peer 0 reports its real queue
    assert reg.place(now=2).peer_id == IDS[1]  # type: ignore[union-attr]


def test_dead_left_and_excluded_peers_are_never_chosen() -> None:
    reg = Registry(dead_after=5)
    beat(reg, IDS[0], now=0)
    beat(reg, IDS[1], now=9)
    beat(reg, IDS[2], now=9)
    reg.leave(IDS[2])
    assert reg.place(now=10).peer_id == IDS[1]  # type: ignore[union-attr]  # IDS[0] silent 10s
    assert reg.place(now=10, exclude=[IDS[1]]) is None
    assert [r.peer_id for r in reg.sweep(now=10)] == [IDS[0]]
    assert reg.sweep(now=10) == []  # reported once


def test_no_candidates_means_no_placement() -> None:
    assert choose([]) is None
    assert choose([Candidate("a" * 26, slots=1)], exclude=["a" * 26]) is None


candidates = st.lists(
    st.builds(
        Candidate,
        peer_id=st.sampled_from(IDS),
        slots=st.integers(1, 8),
        queued=st.integers(0, 20),
        running=st.integers(0, 8),
        placed=st.integers(0, 20),
        cpu_percent=st.floats(0, 100),
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda c: c.peer_id,
)


@given(candidates)
def test_placement_never_prefers_a_full_peer_to_an_idle_one(cands: list[Candidate]) -> None:
    chosen = choose(cands)
    assert chosen in cands  # always one of the live candidates
    idle = [c for c in cands if c.queued + c.running + c.placed == 0]
    if idle:
        assert chosen is not None
        assert chosen.queued + chosen.running + chosen.placed < chosen.slots
    assert chosen is not None
    assert all(chosen.busyness <= c.busyness for c in cands)


@given(st.integers(1, 4), st.integers(1, 60))
def test_equal_peers_get_equal_shares_of_a_burst(n_peers: int, n_tasks: int) -> None:
    reg = Registry(dead_after=30)
    for pid in IDS[:n_peers]:
        beat(reg, pid, now=0, slots=1)
    counts = Counter(reg.place(now=0).peer_id for _ in range(n_tasks))  # type: ignore[union-attr]
    assert max(counts.values()) - min(counts.values(), default=0) <= 1 or len(counts) < n_peers
    assert max(counts.values()) <= -(-n_tasks // n_peers)


@given(candidates, st.integers(0, 40), st.lists(st.sampled_from(IDS), max_size=2))
def test_placing_many_at_once_decides_as_placing_them_one_by_one(
    cands: list[Candidate], count: int, exclude: list[str]
) -> None:
    """A batch is placed in one pass (the tracker reads its candidates once); each
    decision still sees the tasks placed before it, exactly as ``count`` single calls."""
    from dataclasses import replace

    from peeros.tracker.placement import choose_many

    pool, expected = list(cands), []
    for _ in range(count):
        c = choose(pool, exclude)
        if c is None:
            break
        expected.append(c.peer_id)
        pool = [replace(x, placed=x.placed + 1) if x is c else x for x in pool]
    assert choose_many(cands, count, exclude) == expected


def test_the_registry_places_a_batch_as_it_places_single_tasks() -> None:
    one, many = Registry(dead_after=30), Registry(dead_after=30)
    for reg in (one, many):
        beat(reg, IDS[0], now=0, slots=2, running=2)
        beat(reg, IDS[1], now=0, slots=1)
        beat(reg, IDS[2], now=0, slots=4, queued=1)
    singles = [one.place(now=1, exclude=[IDS[2]]) for _ in range(7)]
    assert [r.peer_id for r in many.place_many(now=1, count=7, exclude=[IDS[2]])] == [
        r.peer_id  # type: ignore[union-attr]
        for r in singles
    ]
    assert many.place(now=1) == one.place(now=1)  # the same placed counts afterwards
    assert many.place_many(now=99, count=3) == []  # everyone silent too long
