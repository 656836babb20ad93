"""The result cache: LRU bound, TTL, counters; time comes from a fake clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peeros.compute.cache import ResultCache


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_hit_and_miss_are_counted() -> None:
    cache = ResultCache(clock=FakeClock())
    assert cache.get("k") is None
    cache.put("k", {"result": 25})
    entry = cache.get("k")
    assert entry is not None and entry.value == {"result": 25} and entry.key == "k"
    assert cache.stats() == {
        "entries": 1,
        "hits": 1,
        "misses": 1,
        "evictions": 0,
        "expirations": 0,
        "hit_rate": 0.5,
    }


def test_entries_expire_after_ttl() -> None:
    clock = FakeClock()
    cache = ResultCache(ttl=10.0, clock=clock)
    cache.put("k", 1)
    clock.now += 9.999
    assert cache.get("k") is not None
    clock.now += 0.001
    assert "k" not in cache
    assert cache.get("k") is None
    assert len(cache) == 0
    stats = cache.stats()
    assert (stats["hits"], stats["misses"], stats["expirations"]) == (1, 1, 1)


def test_put_refreshes_ttl_and_value() -> None:
    clock = FakeClock()
    cache = ResultCache(ttl=10.0, clock=clock)
    cache.put("k", 1)
    clock.now += 8
    cache.put("k", 2)
    clock.now += 8
    entry = cache.get("k")
    assert entry is not None and entry.value == 2 and entry.stored_at == 1008.0


def test_least_recently_used_is_evicted() -> None:
    cache = ResultCache(max_entries=2, clock=FakeClock())
    cache.put("a", 1)
    cache.put("b", 2)
    cache.get("a")  # b is now the least recently used
    cache.put("c", 3)
    assert "a" in cache and "c" in cache and "b" not in cache
    assert cache.stats()["evictions"] == 1


def test_expired_entry_pushed_out_counts_as_expiration() -> None:
    clock = FakeClock()
    cache = ResultCache(max_entries=1, ttl=5.0, clock=clock)
    cache.put("a", 1)
    clock.now += 6
    cache.put("b", 2)
    assert (cache.stats()["evictions"], cache.stats()["expirations"]) == (0, 1)


def test_invalidate_clear_and_purge() -> None:
    clock = FakeClock()
    cache = ResultCache(ttl=5.0, clock=clock)
    cache.put("a", 1)
    assert cache.invalidate("a") is True
    assert cache.invalidate("a") is False
    cache.put("b", 2)
    cache.put("c", 3)
    clock.now += 3
    cache.put("d", 4)
    clock.now += 3
    assert cache.purge_expired() == 2
    assert len(cache) == 1
    cache.get("d")
    cache.clear()
    assert len(cache) == 0 and cache.stats()["hits"] == 1  # counters survive clear()


def test_zero_entries_disables_caching_and_bad_bounds_are_refused() -> None:
    cache = ResultCache(max_entries=0, clock=FakeClock())
    cache.put("a", 1)
    assert cache.get("a") is None
    with pytest.raises(ValueError, match="max_entries"):
        ResultCache(max_entries=-1)
    with pytest.raises(ValueError, match="ttl"):
        ResultCache(ttl=-1.0)


ops = st.lists(st.tuples(st.sampled_from(["put", "get", "tick"]), st.integers(0, 20)), max_size=200)


@given(st.integers(1, 8), ops)
def test_lru_never_exceeds_bound_and_counters_add_up(
    bound: int, program: list[tuple[str, int]]
) -> None:
    clock = FakeClock()
    cache = ResultCache(max_entries=bound, ttl=7.0, clock=clock)
    gets = 0
    for op, n in program:
        if op == "put":
            cache.put(str(n), n)
        elif op == "get":
            gets += 1
            entry = cache.get(str(n))
            assert entry is None or (entry.value == n and clock.now < entry.expires_at)
        else:
            clock.now += n / 4
        assert len(cache) <= bound
    stats = cache.stats()
    assert stats["hits"] + stats["misses"] == gets
