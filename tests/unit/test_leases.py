"""Placement leases: the pure pool, and the placer around a fake tracker call."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from peeros.compute.leases import LeasedPlacer, LeasePool
from peeros.errors import Unavailable
from peeros.protocol import Placement
from peeros.tracker.registry import Registry
from tests.unit.test_placement import IDS, beat


def p(i: int) -> Placement:
    return Placement(peer_id=IDS[i], address=f"127.0.0.1:{9000 + i}")


def test_leases_are_handed_out_oldest_first() -> None:
    pool = LeasePool(size=4, max_age=10)
    pool.add([p(0), p(1), p(2)], now=0)
    assert pool.take(1, [], now=1) == [p(0)]
    assert pool.take(2, [], now=1) == [p(1), p(2)]
    assert pool.take(1, [], now=1) is None


def test_a_lease_older_than_max_age_is_never_used() -> None:
    pool = LeasePool(size=4, max_age=10)
    pool.add([p(0)], now=0)
    pool.add([p(1)], now=5)
    assert pool.take(1, [], now=12) == [p(1)]
    assert len(pool) == 0


def test_excluded_peers_are_skipped_and_their_leases_kept_for_others() -> None:
    pool = LeasePool(size=4, max_age=10)
    pool.add([p(0), p(1), p(0)], now=0)
    assert pool.take(1, [IDS[0]], now=0) == [p(1)]
    assert pool.take(1, [IDS[0]], now=0) is None  # only leases on the failed peer remain
    assert pool.take(2, [], now=0) == [p(0), p(0)]


def test_a_request_the_pool_cannot_serve_whole_takes_nothing() -> None:
    pool = LeasePool(size=4, max_age=10)
    pool.add([p(0), p(1)], now=0)
    assert pool.take(3, [], now=0) is None
    assert pool.take(2, [IDS[1]], now=0) is None
    assert len(pool) == 2


def test_refill_is_wanted_from_half_empty_up_to_the_size() -> None:
    pool = LeasePool(size=4, max_age=10)
    assert pool.wanted(now=0) == 4
    pool.add([p(0), p(1), p(2)], now=0)
    assert pool.wanted(now=0) == 0
    pool.take(1, [], now=0)
    assert pool.wanted(now=0) == 2
    assert pool.wanted(now=11) == 4  # expired leases count for nothing


def test_an_unreachable_peer_loses_its_leases() -> None:
    pool = LeasePool(size=4, max_age=10)
    pool.add([p(0), p(1), p(0)], now=0)
    assert pool.forget(p(0).address) == 2
    assert pool.take(1, [], now=0) == [p(1)]


def test_racing_refills_never_grow_the_pool_past_twice_its_size() -> None:
    pool = LeasePool(size=2, max_age=10)
    pool.add([p(0), p(1), p(2)], now=0)
    pool.add([p(0), p(1)], now=1)
    assert len(pool) == 4
    assert pool.take(1, [], now=1) == [p(1)]  # the oldest was dropped


def test_a_lease_given_back_serves_the_next_task_first() -> None:
    """Sequential tasks reuse their lease: the peer that ran the last one is warm."""
    pool = LeasePool(size=4, max_age=10)
    pool.add([p(0), p(1), p(2)], now=0)
    assert pool.take(1, [], now=1) == [p(0)]
    assert pool.give_back(p(0), now=2) is True
    assert [pool.take(1, [], now=3) for _ in range(2)] == [[p(0)], [p(1)]]
    assert len(pool) == 1  # two leases are out with tasks


def test_concurrent_tasks_take_different_leases_and_the_last_back_goes_first() -> None:
    pool = LeasePool(size=4, max_age=10)
    pool.add([p(0), p(1), p(2)], now=0)
    assert pool.take(2, [], now=1) == [p(0), p(1)]  # a burst still spreads
    assert pool.give_back(p(0), now=2) and pool.give_back(p(1), now=3)
    assert pool.take(3, [], now=3) == [p(1), p(0), p(2)]


def test_a_given_back_lease_keeps_its_grant_time() -> None:
    pool = LeasePool(size=4, max_age=10)
    pool.add([p(0)], now=0)
    pool.take(1, [], now=1)
    assert pool.give_back(p(0), now=5) is True
    assert pool.take(1, [], now=10.5) is None  # expired when it would have, unused or not
    pool.add([p(1)], now=10.5)
    pool.take(1, [], now=11)
    assert pool.give_back(p(1), now=21) is False  # expired while its task ran: dropped
    assert len(pool) == 0


def test_only_a_lease_out_with_a_task_comes_back() -> None:
    pool = LeasePool(size=4, max_age=10)
    assert pool.give_back(p(0), now=0) is False  # never lent
    pool.add([p(0), p(1)], now=0)
    pool.take(2, [], now=0)
    assert pool.forget(p(0).address) == 0  # none in the pool, one out
    assert pool.give_back(p(0), now=1) is False  # its peer was unreachable meanwhile
    assert pool.give_back(p(1), now=1) is True
    assert pool.give_back(p(1), now=1) is False  # one lease lent, one given back
    assert pool.take(1, [IDS[1]], now=1) is None and len(pool) == 1


def test_a_pool_needs_room_for_one_lease() -> None:
    with pytest.raises(ValueError):
        LeasePool(size=0, max_age=10)


class Tracker:
    """A real registry behind the placer's ``ask``: counts requests like the tracker."""

    def __init__(self, n_peers: int) -> None:
        self.registry = Registry(dead_after=30)
        for pid in IDS[:n_peers]:
            beat(self.registry, pid, now=0, slots=2)
        self.requests: list[tuple[int, list[str]]] = []
        self.down = False

    async def ask(self, count: int, exclude: list[str]) -> list[Placement]:
        self.requests.append((count, exclude))
        if self.down:
            raise Unavailable("cannot reach the tracker")
        out = []
        for _ in range(count):
            rec = self.registry.place(now=1, exclude=exclude)
            assert rec is not None
            out.append(Placement(peer_id=rec.peer_id, address=rec.address))
        return out


async def run_placer(tracker: Tracker, size: int, body: object) -> None:
    """Run ``body(placer)`` with the placer's refill loop running beside it."""
    now = [0.0]
    placer = LeasedPlacer(tracker.ask, size, max_age=10, clock=lambda: now[0])
    refill = asyncio.create_task(placer.run())
    try:
        await body(placer, now)  # type: ignore[operator]
    finally:
        refill.cancel()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_single_tasks_after_the_first_need_no_tracker_request() -> None:
    tracker = Tracker(3)

    async def body(placer: LeasedPlacer, now: list[float]) -> None:
        first = await placer.place(1, [])
        assert tracker.requests == [(1 + 8, [])]  # the task and a full pool, one request
        chosen = [first[0].peer_id]
        for _ in range(3):
            chosen += [x.peer_id for x in await placer.place(1, [])]
            await settle()
        assert len(tracker.requests) == 1  # 5 leases left: no refill yet
        chosen += [x.peer_id for x in await placer.place(1, [])]
        await settle()
        assert tracker.requests[1:] == [(4, [])]  # down to half: refilled in the background
        for _ in range(13):
            chosen += [x.peer_id for x in await placer.place(1, [])]
            await settle()
        assert sorted(Counter(chosen).values()) == [6, 6, 6]  # the tracker's round robin

    asyncio.run(run_placer(tracker, 8, body))


def test_batches_bigger_than_the_pool_and_retries_ask_the_tracker() -> None:
    tracker = Tracker(3)

    async def body(placer: LeasedPlacer, now: list[float]) -> None:
        got = await placer.place(30, [])
        assert tracker.requests == [(30, [])] and len(got) == 30
        assert Counter(x.peer_id for x in got) == {IDS[0]: 10, IDS[1]: 10, IDS[2]: 10}
        await placer.place(1, [])  # asks for one task and fills the pool
        assert tracker.requests[-1] == (5, [])
        retry = await placer.place(1, [IDS[1], IDS[2]])  # a retry avoids the failed peers
        assert retry[0].peer_id == IDS[0]
        assert len(tracker.requests) == 2
        got = await placer.place(3, [IDS[0], IDS[1]])  # no three leases fit: ask
        assert tracker.requests[-1] == (3, [IDS[0], IDS[1]])
        assert {x.peer_id for x in got} == {IDS[2]}

    asyncio.run(run_placer(tracker, 4, body))


def test_a_tracker_outage_is_an_error_only_when_no_lease_is_left() -> None:
    tracker = Tracker(2)

    async def body(placer: LeasedPlacer, now: list[float]) -> None:
        await placer.place(1, [])
        tracker.down = True
        for _ in range(4):
            await placer.place(1, [])  # leased: the outage does not show
            await settle()
        with pytest.raises(Unavailable):
            await placer.place(1, [])
        tracker.down = False
        now[0] = 2.0  # past the refill back-off
        assert len(await placer.place(1, [])) == 1

    asyncio.run(run_placer(tracker, 4, body))


def test_expired_leases_send_the_next_task_to_the_tracker() -> None:
    tracker = Tracker(2)

    async def body(placer: LeasedPlacer, now: list[float]) -> None:
        await placer.place(1, [])
        now[0] = 11.0
        await placer.place(1, [])
        assert [c for c, _ in tracker.requests] == [5, 5]

    asyncio.run(run_placer(tracker, 4, body))


def test_take_now_serves_from_the_pool_without_waiting_and_refills_behind() -> None:
    """What a lone task's submission uses: leases at hand or None, never a request of
    its own; taking the pool down to half wakes the background refill."""
    tracker = Tracker(3)

    async def body(placer: LeasedPlacer, now: list[float]) -> None:
        assert placer.take_now(1, []) is None  # an empty pool: the caller asks the tracker
        assert tracker.requests == []
        await placer.place(1, [])  # fills the pool (8 leases)
        taken = [placer.take_now(1, []) for _ in range(4)]
        assert all(t is not None and len(t) == 1 for t in taken)
        assert len(tracker.requests) == 1  # nothing asked on the way
        await settle()
        assert tracker.requests[1:] == [(4, [])]  # down to half: refilled in the background
        assert placer.take_now(20, []) is None  # more than the pool holds: nothing taken
        assert len(placer.pool) == 8

    asyncio.run(run_placer(tracker, 8, body))


def test_tasks_with_exclusions_get_the_pool_refilled_behind_them() -> None:
    """An ``elsewhere`` task excludes its origin: its own placement request cannot top
    the pool up, so the pool is refilled behind it, or every such task would ask."""
    tracker = Tracker(3)

    async def body(placer: LeasedPlacer, now: list[float]) -> None:
        assert placer.take_now(1, []) is None  # a plain first try: it tops up itself
        await settle()
        assert tracker.requests == []
        assert placer.take_now(1, [IDS[0]]) is None  # empty pool, with an exclusion
        await settle()
        assert tracker.requests == [(8, [])]  # refilled, without the exclusion
        taken = placer.take_now(1, [IDS[0]])
        assert taken is not None and taken[0].peer_id != IDS[0]

    asyncio.run(run_placer(tracker, 8, body))


def test_a_lease_whose_task_failed_goes_back_last_and_used_up_leases_never_come_back() -> None:
    pool = LeasePool(size=4, max_age=10)
    pool.add([p(0), p(1), p(2)], now=0)
    pool.take(1, [], now=1)
    assert pool.give_back(p(0), now=1, warm=False) is True  # its task failed there
    assert pool.take(3, [], now=1) == [p(1), p(2), p(0)]
    fresh = LeasePool(size=4, max_age=10)
    fresh.add([p(0)], now=2)
    assert fresh.take(1, [], now=2, lend=False) == [p(0)]  # e.g. a retry's placement
    assert fresh.give_back(p(0), now=2) is False  # used up, as before leases were reused
