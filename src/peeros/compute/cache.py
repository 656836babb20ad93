"""The result cache: reuse the result of an identical task (SPEC §2, ``cache``).

Keys are :func:`peeros.compute.program.program_hash` digests. Two bounds keep it
small and fresh: at most ``max_entries`` entries, the least recently used evicted
first, and a time to live after which an entry is never returned. Counters (hits,
misses, evictions, expirations) are kept for the dashboard and are not reset by
:meth:`ResultCache.clear`.

Not thread-safe, on purpose: the peer uses it from its single event loop only.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A cached result and when it was stored / stops being valid (clock seconds)."""

    key: str
    value: Any
    stored_at: float
    expires_at: float


class ResultCache:
    """LRU-bounded, TTL-limited map from task hash to result."""

    def __init__(
        self, max_entries: int = 1024, ttl: float = 300.0, clock: Clock = time.monotonic
    ) -> None:
        if max_entries < 0:
            raise ValueError(f"max_entries must be >= 0, got {max_entries}")
        if ttl < 0:
            raise ValueError(f"ttl must be >= 0, got {ttl}")
        self.max_entries = max_entries  # 0 disables caching: put() stores nothing
        self.ttl = ttl
        self._clock = clock
        # Order is recency: the first entry is the least recently used.
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.expirations = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        """Whether a live entry exists; unlike :meth:`get`, counts nothing."""
        entry = self._entries.get(key) if isinstance(key, str) else None
        return entry is not None and self._clock() < entry.expires_at

    def get(self, key: str) -> CacheEntry | None:
        """The live entry for ``key`` (now most recently used), or None: a miss.

        An expired entry is dropped and counts as both a miss and an expiration.
        """
        entry = self._entries.get(key)
        if entry is not None and self._clock() >= entry.expires_at:
            del self._entries[key]
            self.expirations += 1
            entry = None
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, key: str, value: Any) -> None:
        """Store (or replace) ``key``, evicting least recently used entries over the bound."""
        if self.max_entries == 0:
            return
        now = self._clock()
        self._entries[key] = CacheEntry(key, value, now, now + self.ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            _, old = self._entries.popitem(last=False)
            if now >= old.expires_at:
                self.expirations += 1  # it was dead anyway: not a capacity eviction
            else:
                self.evictions += 1

    def invalidate(self, key: str) -> bool:
        """Forget ``key``; return whether it was present."""
        return self._entries.pop(key, None) is not None

    def clear(self) -> None:
        """Forget every entry (the counters are kept)."""
        self._entries.clear()

    def purge_expired(self) -> int:
        """Drop every expired entry now; return how many. Optional housekeeping."""
        now = self._clock()
        dead = [k for k, e in self._entries.items() if now >= e.expires_at]
        for key in dead:
            del self._entries[key]
        self.expirations += len(dead)
        return len(dead)

    def stats(self) -> dict[str, float]:
        """Counters for the dashboard; ``hit_rate`` is hits / lookups (0 before any)."""
        lookups = self.hits + self.misses
        return {
            "entries": len(self._entries),
            "hits": self.hits,
            "misses": self.misses,
            "evictions": self.evictions,
            "expirations": self.expirations,
            "hit_rate": self.hits / lookups if lookups else 0.0,
        }
