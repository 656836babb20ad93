"""Per-peer task quotas over a sliding window; time comes from a fake clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peeros.compute.quotas import TaskQuota
from peeros.errors import QuotaExceeded

PEER = "abcdef0123456789"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_admits_up_to_limit_then_refuses_with_retry_time() -> None:
    clock = FakeClock()
    quota = TaskQuota(limit=100, window=60.0, clock=clock)
    for _ in range(100):
        quota.check_and_consume(PEER)
        clock.now += 0.1
    clock.now = 47.7
    with pytest.raises(QuotaExceeded) as err:
        quota.check_and_consume(PEER)
    assert err.value.message == (
        "quota exceeded: peer abcdef01… may submit 100 tasks per 60s; 100 used, retry in 12.3s"
    )
    assert quota.usage(PEER) == (100, 100, 60.0)
    clock.now = 60.0  # the first admission (t=0) has left the window
    quota.check_and_consume(PEER)
    assert quota.usage(PEER) == (100, 100, 60.0)


def test_refused_batch_consumes_nothing() -> None:
    clock = FakeClock()
    quota = TaskQuota(limit=10, window=10.0, clock=clock)
    quota.check_and_consume(PEER, n=4)
    clock.now = 2.0
    quota.check_and_consume(PEER, n=3)
    with pytest.raises(QuotaExceeded) as err:
        quota.check_and_consume(PEER, n=5)
    # 2 of the 5 must wait until the batch at t=0 (4 tasks) expires at t=10.
    assert err.value.message.endswith("; 7 used, 5 requested, retry in 8.0s")
    assert quota.usage(PEER)[0] == 7
    quota.check_and_consume(PEER, n=3)
    assert quota.usage(PEER)[0] == 10


def test_batch_larger_than_limit_can_never_fit() -> None:
    quota = TaskQuota(limit=3, window=1.0, clock=FakeClock())
    with pytest.raises(QuotaExceeded, match="a batch of 4 can never fit"):
        quota.check_and_consume(PEER, n=4)
    assert quota.usage(PEER)[0] == 0


def test_peers_are_independent_and_short_ids_shown_whole() -> None:
    quota = TaskQuota(limit=1, window=5.0, clock=FakeClock())
    quota.check_and_consume("p1")
    quota.check_and_consume("p2")
    with pytest.raises(QuotaExceeded, match="peer p1 may submit 1 tasks per 5s"):
        quota.check_and_consume("p1")


def test_zero_or_negative_limit_is_unlimited() -> None:
    for limit in (0, -1):
        quota = TaskQuota(limit=limit, window=0.0, clock=FakeClock())
        quota.check_and_consume(PEER, n=10**9)
        assert quota.usage(PEER) == (0, limit, 0.0)
        assert quota.tracked_peers() == 0


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="window"):
        TaskQuota(limit=1, window=0.0)
    with pytest.raises(ValueError, match="n must be"):
        TaskQuota(limit=1, window=1.0).check_and_consume(PEER, n=-1)


def test_memory_is_bounded_idle_peers_forgotten() -> None:
    clock = FakeClock()
    quota = TaskQuota(limit=5, window=10.0, clock=clock)
    for i in range(1000):
        quota.check_and_consume(f"peer-{i}")
    assert quota.tracked_peers() == 1000
    clock.now = 10.0
    quota.check_and_consume("late")  # a full sweep is due once per window
    assert quota.tracked_peers() == 1
    clock.now = 25.0
    assert quota.prune() == 1 and quota.tracked_peers() == 0


arrivals = st.lists(
    st.tuples(st.floats(0.0, 3.0, allow_nan=False), st.integers(1, 4)), max_size=120
)


@given(st.integers(1, 10), st.floats(0.5, 10.0), arrivals)
def test_never_more_than_limit_in_any_window(
    limit: int, window: float, steps: list[tuple[float, int]]
) -> None:
    clock = FakeClock()
    quota = TaskQuota(limit=limit, window=window, clock=clock)
    admitted: list[tuple[float, int]] = []
    for gap, n in steps:
        clock.now += gap
        before = quota.usage(PEER)[0]
        try:
            quota.check_and_consume(PEER, n)
            admitted.append((clock.now, n))
        except QuotaExceeded:
            assert quota.usage(PEER)[0] == before  # a refusal consumes nothing
            if before + n <= limit:
                pytest.fail("refused a batch that fitted")
    for t, _ in admitted:  # any window ending at an admission holds at most `limit`
        assert sum(k for s, k in admitted if t - window < s <= t) <= limit
