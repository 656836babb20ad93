"""KVStore: JSON values, TTLs on a fake clock, quotas, atomicity, thread safety."""

from __future__ import annotations

import threading

import pytest

from peeros.memory.kv import (
    MISSING,
    IntegerOverflow,
    InvalidArgument,
    InvalidKey,
    InvalidValue,
    JSONValue,
    KeyNotFound,
    KVStore,
    MemoryStoreError,
    Quota,
    QuotaExceeded,
    Usage,
    ValueTooLarge,
    WrongType,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> KVStore:
    return KVStore(clock=clock)


JSON_VALUES: list[JSONValue] = [
    None,
    True,
    False,
    0,
    -(2**63),
    2**70,
    3.5,
    -0.0,
    "",
    "héllo ☃",
    "\udcff binary",
    [],
    [1, "a", None, [2.5, {"x": False}]],
    {},
    {"nested": {"list": [1, 2, 3], "s": "t"}, "n": None},
]


@pytest.mark.parametrize("value", JSON_VALUES, ids=repr)
def test_every_json_type_round_trips(store: KVStore, value: JSONValue) -> None:
    assert store.set("k", value, owner="local") is True
    got = store.get("k")
    assert got == value
    assert type(got) is type(value)


def test_containers_are_copied_in_and_out(store: KVStore) -> None:
    value: list[JSONValue] = [1, {"a": 2}]
    store.set("k", value, owner="local")
    value.append(3)
    got = store.get("k")
    assert got == [1, {"a": 2}]
    assert isinstance(got, list)
    got.append(4)
    assert store.get("k") == [1, {"a": 2}]


def test_values_are_normalised_as_json(store: KVStore) -> None:
    store.set("t", (1, 2), owner="local")  # type: ignore[arg-type]
    assert store.get("t") == [1, 2]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {1, 2}, object(), b"raw"])
def test_non_json_values_are_refused(store: KVStore, value: object) -> None:
    with pytest.raises(InvalidValue, match="'k'"):
        store.set("k", value, owner="local")  # type: ignore[arg-type]
    assert store.dbsize() == 0


@pytest.mark.parametrize("key", ["", 5, None, "x" * 1025, "é" * 513])
def test_invalid_keys_are_refused(store: KVStore, key: object) -> None:
    with pytest.raises(InvalidKey):
        store.set(key, 1, owner="local")  # type: ignore[arg-type]


def test_key_limit_is_in_utf8_bytes(store: KVStore) -> None:
    assert store.set("x" * 1024, 1, owner="local")
    assert store.set("é" * 512, 1, owner="local")


def test_missing_key(store: KVStore) -> None:
    with pytest.raises(KeyNotFound, match="'nope'") as info:
        store.get("nope")
    assert info.value.key == "nope"
    assert store.get_or("nope", 7) == 7
    assert store.get_or("nope", MISSING) is MISSING


def test_stored_none_differs_from_missing(store: KVStore) -> None:
    store.set("n", None, owner="local")
    assert store.get_or("n", MISSING) is None
    assert store.mget(["n", "absent"], MISSING) == [None, MISSING]
    assert store.mget(["n", "absent"]) == [None, None]


def test_nx_and_xx(store: KVStore) -> None:
    assert store.set("k", 1, owner="local", xx=True) is False
    assert store.exists("k") == 0
    assert store.set("k", 1, owner="local", nx=True) is True
    assert store.set("k", 2, owner="local", nx=True) is False
    assert store.get("k") == 1
    assert store.set("k", 3, owner="local", xx=True) is True
    assert store.get("k") == 3
    with pytest.raises(InvalidArgument):
        store.set("k", 4, owner="local", nx=True, xx=True)


def test_set_and_get_returns_previous_value(store: KVStore) -> None:
    assert store.set_and_get("k", "a", owner="local") == (True, MISSING)
    assert store.set_and_get("k", [1], owner="local") == (True, "a")
    assert store.set_and_get("k", "c", owner="local", nx=True) == (False, [1])


# -- TTL -------------------------------------------------------------------------------


def test_ttl_expiry_on_the_fake_clock(store: KVStore, clock: FakeClock) -> None:
    store.set("k", "v", owner="local", ttl=10)
    assert store.ttl("k") == 10
    clock.now += 9.5
    assert store.get("k") == "v"
    assert store.ttl("k") == pytest.approx(0.5)
    clock.now += 0.5
    assert store.exists("k") == 0
    with pytest.raises(KeyNotFound):
        store.get("k")
    with pytest.raises(KeyNotFound):
        store.ttl("k")
    assert store.stats().expired == 1
    assert store.usage("local") == Usage()


def test_ttl_none_means_no_expiry(store: KVStore) -> None:
    store.set("k", 1, owner="local")
    assert store.ttl("k") is None


def test_expired_keys_vanish_from_every_view(store: KVStore, clock: FakeClock) -> None:
    store.set("a", 1, owner="local", ttl=1)
    store.set("b", 2, owner="local")
    clock.now += 1
    assert store.keys() == ["b"]
    assert store.dbsize() == 1
    assert store.mget(["a", "b"]) == [None, 2]
    assert store.stats().expires == 0


def test_purge_expired_with_explicit_now(store: KVStore, clock: FakeClock) -> None:
    for i in range(5):
        store.set(f"k{i}", i, owner="local", ttl=i + 1)
    assert store.purge_expired(clock.now + 3) == 3
    assert store.keys() == ["k3", "k4"]


def test_overwrite_clears_ttl_unless_keep_ttl(store: KVStore, clock: FakeClock) -> None:
    store.set("k", 1, owner="local", ttl=5)
    store.set("k", 2, owner="local", keep_ttl=True)
    assert store.ttl("k") == 5
    store.set("k", 3, owner="local")
    assert store.ttl("k") is None
    clock.now += 100
    assert store.get("k") == 3
    with pytest.raises(InvalidArgument):
        store.set("k", 4, owner="local", ttl=1, keep_ttl=True)


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf"), True])
def test_invalid_ttl_is_refused(store: KVStore, ttl: float) -> None:
    with pytest.raises(InvalidArgument):
        store.set("k", 1, owner="local", ttl=ttl)


def test_expire(store: KVStore, clock: FakeClock) -> None:
    assert store.expire("missing", 5) is False
    store.set("k", 1, owner="local")
    assert store.expire("k", 5) is True
    assert store.stats().expires == 1
    assert store.expire("k", 50) is True
    clock.now += 10
    assert store.get("k") == 1
    assert store.expire("k", 0) is True  # non-positive deletes, as Redis
    assert store.exists("k") == 0


def test_rewriting_many_ttls_keeps_the_heap_small(store: KVStore, clock: FakeClock) -> None:
    for i in range(10_000):
        store.set("k", i, owner="local", ttl=1000)
        store.set("k", i, owner="local")
    assert len(store._heap) <= 130  # stale rows are dropped by compaction
    store.set("k", 1, owner="local", ttl=1)
    clock.now += 1
    assert store.dbsize() == 0


# -- quotas ----------------------------------------------------------------------------


def test_max_keys_refuses_the_extra_key_and_changes_nothing(clock: FakeClock) -> None:
    store = KVStore(max_keys=2, clock=clock)
    store.set("a", 1, owner="p1")
    store.set("b", 2, owner="p1")
    with pytest.raises(QuotaExceeded, match=r"quota exceeded: owner 'p1' may hold 2 keys.*'c'"):
        store.set("c", 3, owner="p1")
    assert store.keys() == ["a", "b"]
    assert store.usage("p1").keys == 2
    store.set("a", 10, owner="p1")  # overwriting own key adds no key
    store.set("c", 3, owner="p2")  # quotas are per owner
    assert store.get("a") == 10


def test_max_bytes_counts_json_plus_key(clock: FakeClock) -> None:
    store = KVStore(max_bytes=20, clock=clock)
    store.set("k", "x" * 10, owner="p")  # '"xxxxxxxxxx"' = 12 + key 1
    assert store.usage("p") == Usage(keys=1, bytes=13)
    with pytest.raises(QuotaExceeded, match="20 bytes"):
        store.set("j", "y" * 5, owner="p")  # 7 + 1 = 8 -> 21
    assert store.keys() == ["k"]
    assert store.usage("p") == Usage(keys=1, bytes=13)
    store.set("k", "x" * 17, owner="p")  # grows own key to exactly 20
    with pytest.raises(QuotaExceeded):
        store.set("k", "x" * 18, owner="p")
    assert store.get("k") == "x" * 17
    store.set("k", "é", owner="p")  # shrinking is allowed; 'é' is 2 UTF-8 bytes
    assert store.usage("p") == Usage(keys=1, bytes=5)


def test_overwrite_by_another_owner_moves_the_charge(store: KVStore) -> None:
    store.set("k", 12345, owner="p1")
    store.set("k", 1, owner="p2")
    assert store.usage("p1") == Usage()
    assert store.usage("p2") == Usage(keys=1, bytes=2)
    store.incrby("k", 1, owner="p3")
    assert store.usage("p2") == Usage()
    assert store.usage("p3") == Usage(keys=1, bytes=2)


def test_per_owner_quota_override(clock: FakeClock) -> None:
    store = KVStore(max_keys=1, clock=clock)
    store.set_quota("big", Quota(max_keys=3))
    for key in "abc":
        store.set(key, 1, owner="big")
    with pytest.raises(QuotaExceeded):
        store.set("d", 1, owner="big")
    store.set_quota("big", None)
    with pytest.raises(QuotaExceeded):
        store.set("e", 1, owner="big")


def test_mset_is_all_or_nothing(clock: FakeClock) -> None:
    store = KVStore(max_keys=3, clock=clock)
    store.set("a", 1, owner="local", ttl=5)
    with pytest.raises(QuotaExceeded, match="holds 1, writing 4 keys adds 3"):
        store.mset({"a": 2, "b": 2, "c": 2, "d": 2}, "local")
    assert store.keys() == ["a"]
    assert store.get("a") == 1
    with pytest.raises(InvalidValue):
        store.mset({"b": 1, "c": float("nan")}, "local")
    assert store.keys() == ["a"]
    store.mset({"a": 2, "b": 2, "c": 2}, owner="local")
    assert store.mget(["a", "b", "c"]) == [2, 2, 2]
    assert store.ttl("a") is None  # MSET clears TTLs, as Redis


def test_max_value_bytes(clock: FakeClock) -> None:
    store = KVStore(max_value_bytes=10, clock=clock)
    store.set("k", "x" * 8, owner="local")  # 10 bytes of JSON
    with pytest.raises(ValueTooLarge, match="'k' is 11 bytes, max_value_bytes is 10"):
        store.set("k", "x" * 9, owner="local")
    assert isinstance(ValueTooLarge("x"), QuotaExceeded)
    assert store.get("k") == "x" * 8


# -- INCRBY ----------------------------------------------------------------------------


def test_incrby(store: KVStore) -> None:
    assert store.incrby("n", 5, owner="local") == 5
    assert store.incrby("n", -7, owner="local") == -2
    store.set("s", "41", owner="local")
    assert store.incrby("s", 1, owner="local") == 42
    assert store.get("s") == 42  # stored as an int


@pytest.mark.parametrize("value", [1.5, "1.0", "01", "+1", " 1", "-0", "abc", True, [1], None])
def test_incrby_on_a_non_integer_is_wrong_type(store: KVStore, value: JSONValue) -> None:
    store.set("k", value, owner="local")
    with pytest.raises(WrongType, match="'k'"):
        store.incrby("k", 1, owner="local")
    assert store.get("k") == value


def test_incrby_overflow(store: KVStore) -> None:
    store.set("k", 2**63 - 1, owner="local")
    with pytest.raises(IntegerOverflow, match="'k'"):
        store.incrby("k", 1, owner="local")
    store.set("big", 2**63, owner="local")  # a JSON int beyond int64 is not a Redis integer
    with pytest.raises(WrongType):
        store.incrby("big", -1, owner="local")
    with pytest.raises(InvalidArgument):
        store.incrby("k", 2**63, owner="local")
    with pytest.raises(InvalidArgument):
        store.incrby("k", True, owner="local")


def test_incrby_keeps_the_ttl(store: KVStore, clock: FakeClock) -> None:
    store.set("k", 1, owner="local", ttl=10)
    clock.now += 4
    store.incrby("k", 1, owner="local")
    assert store.ttl("k") == 6


def test_concurrent_incr_from_8_threads(store: KVStore) -> None:
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        for _ in range(1000):
            store.incrby("counter", 1, owner="local")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get("counter") == 8000


# -- keyspace --------------------------------------------------------------------------


def test_delete_exists_dbsize_flush(store: KVStore) -> None:
    store.mset({"a": 1, "b": 2, "c": 3}, "local")
    assert store.exists("a", "a", "zz") == 2  # counted per argument, as Redis
    assert store.delete("a", "a", "zz") == 1
    assert store.dbsize() == 2
    assert store.flush() == 2
    assert store.dbsize() == 0
    assert store.usage("local") == Usage()


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("*", ["a*b", "h?llo", "hallo", "hello", "hillo", "hllo", "key:1", "key:22"]),
        ("h?llo", ["h?llo", "hallo", "hello", "hillo"]),
        ("h*llo", ["h?llo", "hallo", "hello", "hillo", "hllo"]),
        ("h[ae]llo", ["hallo", "hello"]),
        ("h[^e]llo", ["h?llo", "hallo", "hillo"]),
        ("h[a-e]llo", ["hallo", "hello"]),
        ("h[e-a]llo", ["hallo", "hello"]),
        ("h\\?llo", ["h?llo"]),
        ("a\\*b", ["a*b"]),
        ("key:?", ["key:1"]),
        ("key:*", ["key:1", "key:22"]),
        ("h[]llo", []),
        ("nothing", []),
    ],
)
def test_keys_glob_like_redis(store: KVStore, pattern: str, expected: list[str]) -> None:
    for key in ["hello", "hallo", "hillo", "hllo", "h?llo", "a*b", "key:22", "key:1"]:
        store.set(key, 1, owner="local")
    assert store.keys(pattern) == expected


def test_stats(store: KVStore, clock: FakeClock) -> None:
    store.set("a", "xx", owner="p1", ttl=1)
    store.set("b", 1, owner="p2")
    store.get("b")
    store.get_or("zz", None)
    stats = store.stats()
    assert (stats.keys, stats.expires, stats.bytes, stats.owners) == (2, 1, 7, 2)
    assert (stats.hits, stats.misses, stats.expired) == (1, 1, 0)
    clock.now += 1
    assert store.stats().expired == 1


def test_errors_share_a_base_class() -> None:
    for cls in (KeyNotFound, InvalidKey, InvalidValue, InvalidArgument, WrongType):
        assert issubclass(cls, MemoryStoreError)
    assert issubclass(IntegerOverflow, MemoryStoreError)
    assert issubclass(QuotaExceeded, MemoryStoreError)
