"""The peer's key-value store: JSON values, optional TTLs, per-owner quotas.

Why a class of its own: the same data is reached by the HTTP API, the CLI, remote
peers and the Redis-protocol front (``resp.py`` + ``commands.py``, per SPEC §4), so
every rule lives here once. The store is pure and synchronous (no sockets, no event
loop); one ``threading.Lock`` makes each public method atomic, so it may be called
from threads or, briefly, from the event loop.

Contract and invariants:

* Keys are non-empty ``str`` of at most ``MAX_KEY_BYTES`` UTF-8 bytes (lone
  surrogates, as produced by ``surrogateescape`` for binary Redis keys, count 3).
* Values are JSON: None, bool, int, float (finite), str, list, dict. Lists and dicts
  are kept as their compact JSON text, so callers never share mutable state with the
  store and what comes back is what JSON would give (tuples become lists, ...).
* The size of an entry is ``len(compact JSON of the value) + key bytes``; it is
  charged to the owner (a peer id, or ``"local"``) that last wrote the key.
* A write that would take its owner above ``max_keys`` / ``max_bytes``, or a value
  above ``max_value_bytes``, raises ``QuotaExceeded`` and changes nothing; ``mset``
  is all-or-nothing. Writes that shrink usage are always allowed.
* Expiry uses the injected monotonic ``clock``: an entry with ``expires_at <= now``
  does not exist. Expired entries are dropped lazily when any method runs (a heap
  makes that O(1) when nothing is due) and by ``purge_expired``.
* Key patterns follow Redis ``KEYS`` glob rules (``*``, ``?``, ``[...]``, ``[^...]``,
  ranges, backslash escapes), matched case-sensitively like ``fnmatchcase``.
"""

from __future__ import annotations

import heapq
import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, overload

from peeros.memory.glob import compile_glob
from peeros.memory.kvcodec import (
    DEFAULT_MAX_VALUE_BYTES,
    INT64_MAX,
    INT64_MIN,
    MAX_KEY_BYTES,
    as_int64,
    check_quota,
    check_ttl,
    encode_value,
    key_bytes,
)
from peeros.memory.kvtypes import (
    MISSING,
    IntegerOverflow,
    InvalidArgument,
    InvalidKey,
    InvalidValue,
    JSONValue,
    KeyNotFound,
    MemoryStoreError,
    Missing,
    Quota,
    QuotaExceeded,
    StoreStats,
    Usage,
    ValueTooLarge,
    WrongType,
    _Entry,
)

__all__ = [
    "DEFAULT_MAX_VALUE_BYTES",
    "INT64_MAX",
    "INT64_MIN",
    "MAX_KEY_BYTES",
    "MISSING",
    "IntegerOverflow",
    "InvalidArgument",
    "InvalidKey",
    "InvalidValue",
    "JSONValue",
    "KVStore",
    "KeyNotFound",
    "MemoryStoreError",
    "Missing",
    "Quota",
    "QuotaExceeded",
    "StoreStats",
    "Usage",
    "ValueTooLarge",
    "WrongType",
    "compile_glob",
]

D = TypeVar("D")


class KVStore:
    """Thread-safe JSON key-value store with TTLs and per-owner quotas."""

    def __init__(
        self,
        *,
        max_keys: int | None = None,
        max_bytes: int | None = None,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._default_quota = Quota(max_keys, max_bytes)
        self._quotas: dict[str, Quota] = {}
        self._max_value_bytes = max_value_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._data: dict[str, _Entry] = {}
        self._usage: dict[str, list[int]] = {}  # owner -> [keys, bytes]
        self._heap: list[tuple[float, str]] = []  # (expires_at, key); stale rows skipped
        self._n_expires = 0
        self._hits = self._misses = self._expired = 0

    # -- quotas ---------------------------------------------------------------------

    def set_quota(self, owner: str, quota: Quota | None) -> None:
        """Give ``owner`` its own limits (None: back to the store's default)."""
        with self._lock:
            if quota is None:
                self._quotas.pop(owner, None)
            else:
                self._quotas[owner] = quota

    def usage(self, owner: str) -> Usage:
        with self._lock:
            used = self._usage.get(owner)
            return Usage(used[0], used[1]) if used else Usage()

    # -- writes ---------------------------------------------------------------------

    def set(
        self,
        key: str,
        value: JSONValue,
        *,
        owner: str,
        ttl: float | None = None,
        nx: bool = False,
        xx: bool = False,
        keep_ttl: bool = False,
    ) -> bool:
        """Store ``value``; False (and no change) when the NX/XX condition fails."""
        done, _ = self.set_and_get(
            key, value, owner=owner, ttl=ttl, nx=nx, xx=xx, keep_ttl=keep_ttl
        )
        return done

    def set_and_get(
        self,
        key: str,
        value: JSONValue,
        *,
        owner: str,
        ttl: float | None = None,
        nx: bool = False,
        xx: bool = False,
        keep_ttl: bool = False,
    ) -> tuple[bool, JSONValue | Missing]:
        """Like ``set`` but also return the previous value (or MISSING), atomically."""
        if nx and xx:
            raise InvalidArgument("NX and XX are mutually exclusive")
        if ttl is not None:
            check_ttl(ttl)
            if keep_ttl:
                raise InvalidArgument("ttl and keep_ttl are mutually exclusive")
        stored, text, size = encode_value(key, value, self._max_value_bytes)
        with self._lock:
            now = self._clock()
            self._purge_locked(now)
            old = self._data.get(key)
            done = not ((nx and old is not None) or (xx and old is None))
            if done:
                expires_at = now + ttl if ttl is not None else None
                if keep_ttl and old is not None:
                    expires_at = old.expires_at
                self._check_quota(owner, key, [(old, size)])
                self._put_locked(key, _Entry(stored, text, owner, size, expires_at), old)
        # Entries are immutable once replaced, so decoding outside the lock is safe.
        return done, MISSING if old is None else old.public()

    def mset(self, mapping: Mapping[str, JSONValue], owner: str) -> None:
        """Set every pair (clearing TTLs, as Redis MSET), or none if a quota refuses."""
        encoded = [
            (key, *encode_value(key, value, self._max_value_bytes))
            for key, value in mapping.items()
        ]
        with self._lock:
            self._purge_locked(self._clock())
            olds = [self._data.get(key) for key, *_ in encoded]
            self._check_quota(
                owner,
                encoded[0][0] if encoded else "",
                [(old, size) for old, (_, _, _, size) in zip(olds, encoded, strict=True)],
            )
            for old, (key, stored, text, size) in zip(olds, encoded, strict=True):
                self._put_locked(key, _Entry(stored, text, owner, size, None), old)

    def incrby(self, key: str, delta: int, *, owner: str) -> int:
        """Add ``delta`` to an integer value (a missing key counts as 0).

        The value may be an int or a str in Redis integer syntax ("42", "-7"); the
        result is stored as an int, keeping the key's TTL. Bools are not integers.
        """
        kbytes = key_bytes(key)
        if type(delta) is not int or not INT64_MIN <= delta <= INT64_MAX:
            raise InvalidArgument(f"delta must be a signed 64-bit int, got {delta!r}")
        with self._lock:
            self._purge_locked(self._clock())
            old = self._data.get(key)
            current = 0 if old is None else as_int64(old)
            if current is None:
                raise WrongType(f"value of key {key!r} is not an integer or out of range")
            result = current + delta
            if not INT64_MIN <= result <= INT64_MAX:
                raise IntegerOverflow(f"increment or decrement would overflow key {key!r}")
            size = len(str(result)) + kbytes
            self._check_quota(owner, key, [(old, size)])
            expires_at = old.expires_at if old is not None else None
            self._put_locked(key, _Entry(result, None, owner, size, expires_at), old)
            return result

    def delete(self, *keys: str) -> int:
        """Remove keys; return how many existed."""
        with self._lock:
            self._purge_locked(self._clock())
            removed = 0
            for key in keys:
                entry = self._data.get(key)
                if entry is not None:
                    self._remove_locked(key, entry)
                    removed += 1
            return removed

    def expire(self, key: str, seconds: float) -> bool:
        """Set a TTL; False if the key is missing. ``seconds <= 0`` deletes (as Redis)."""
        if math.isnan(seconds):
            raise InvalidArgument("seconds must be a number, got NaN")
        with self._lock:
            now = self._clock()
            self._purge_locked(now)
            entry = self._data.get(key)
            if entry is None:
                return False
            if seconds <= 0:
                self._remove_locked(key, entry)
                return True
            if entry.expires_at is None:
                self._n_expires += 1
            entry.expires_at = now + seconds
            self._push_expiry_locked(entry.expires_at, key)
            return True

    def flush(self) -> int:
        """Remove every key of every owner; return how many there were."""
        with self._lock:
            n = len(self._data)
            self._data.clear()
            self._usage.clear()
            self._heap.clear()
            self._n_expires = 0
            return n

    def purge_expired(self, now: float | None = None) -> int:
        """Drop every entry whose TTL has run out by ``now`` (default: the clock)."""
        with self._lock:
            return self._purge_locked(self._clock() if now is None else now)

    # -- reads ----------------------------------------------------------------------

    def get(self, key: str) -> JSONValue:
        """The value of ``key``; raise ``KeyNotFound`` if it is missing or expired."""
        value = self.get_or(key, MISSING)
        if value is MISSING:
            raise KeyNotFound(key)
        return value

    def get_or(self, key: str, default: D) -> JSONValue | D:
        with self._lock:
            self._purge_locked(self._clock())
            entry = self._data.get(key)
            if entry is None:
                self._misses += 1
                return default
            self._hits += 1
            value, text = entry.value, entry.text
        return value if text is None else json.loads(text)

    @overload
    def mget(self, keys: Iterable[str]) -> list[JSONValue]: ...
    @overload
    def mget(self, keys: Iterable[str], default: D) -> list[JSONValue | D]: ...
    def mget(self, keys: Iterable[str], default: Any = None) -> list[Any]:
        """Values of ``keys`` in order, ``default`` for the missing ones."""
        with self._lock:
            self._purge_locked(self._clock())
            entries = [self._data.get(key) for key in keys]
            found = sum(e is not None for e in entries)
            self._hits += found
            self._misses += len(entries) - found
        return [default if e is None else e.public() for e in entries]

    def exists(self, *keys: str) -> int:
        """How many of ``keys`` exist (a key named twice counts twice, as Redis)."""
        with self._lock:
            self._purge_locked(self._clock())
            return sum(key in self._data for key in keys)

    def keys(self, pattern: str = "*") -> list[str]:
        """Sorted keys matching a Redis glob pattern."""
        with self._lock:
            self._purge_locked(self._clock())
            names = list(self._data)
        if pattern != "*":
            match = compile_glob(pattern).fullmatch
            names = [k for k in names if match(k)]
        return sorted(names)

    def ttl(self, key: str) -> float | None:
        """Remaining seconds, or None if the key has no TTL; ``KeyNotFound`` if missing.

        The RESP layer maps KeyNotFound to -2 and None to -1.
        """
        with self._lock:
            now = self._clock()
            self._purge_locked(now)
            entry = self._data.get(key)
            if entry is None:
                raise KeyNotFound(key)
            return None if entry.expires_at is None else entry.expires_at - now

    def dbsize(self) -> int:
        with self._lock:
            self._purge_locked(self._clock())
            return len(self._data)

    def stats(self) -> StoreStats:
        with self._lock:
            self._purge_locked(self._clock())
            total = sum(used[1] for used in self._usage.values())
            counts = (self._n_expires, total, len(self._usage), self._hits, self._misses)
            return StoreStats(len(self._data), *counts, self._expired)

    # -- internals (callers hold the lock where the name says so) -----------------

    def _check_quota(self, owner: str, key: str, writes: list[tuple[_Entry | None, int]]) -> None:
        quota = self._quotas.get(owner, self._default_quota)
        used = self._usage.get(owner, (0, 0))
        check_quota(quota, (used[0], used[1]), owner, key, writes)

    def _put_locked(self, key: str, entry: _Entry, old: _Entry | None) -> None:
        if old is not None:
            self._uncharge_locked(old)
        self._data[key] = entry
        used = self._usage.get(entry.owner)
        if used is None:
            self._usage[entry.owner] = [1, entry.size]
        else:
            used[0] += 1
            used[1] += entry.size
        if entry.expires_at is not None:
            self._n_expires += 1
            if old is None or old.expires_at != entry.expires_at:
                self._push_expiry_locked(entry.expires_at, key)

    def _remove_locked(self, key: str, entry: _Entry) -> None:
        del self._data[key]
        self._uncharge_locked(entry)

    def _uncharge_locked(self, entry: _Entry) -> None:
        used = self._usage[entry.owner]
        used[0] -= 1
        used[1] -= entry.size
        if used[0] == 0:
            del self._usage[entry.owner]
        if entry.expires_at is not None:
            self._n_expires -= 1

    def _push_expiry_locked(self, expires_at: float, key: str) -> None:
        heap = self._heap
        heapq.heappush(heap, (expires_at, key))
        if len(heap) > 64 and len(heap) > 2 * self._n_expires:  # drop stale rows
            heap[:] = [(e.expires_at, k) for k, e in self._data.items() if e.expires_at is not None]
            heapq.heapify(heap)

    def _purge_locked(self, now: float) -> int:
        heap, data = self._heap, self._data
        removed = 0
        while heap and heap[0][0] <= now:
            expires_at, key = heapq.heappop(heap)
            entry = data.get(key)
            if entry is not None and entry.expires_at == expires_at:
                self._remove_locked(key, entry)
                removed += 1
        self._expired += removed
        return removed
