"""CPU task quotas per requesting peer: a sliding-window log (SPEC §2, Quotas).

A peer may have at most ``limit`` tasks admitted in any window of ``window`` seconds.
The exact sliding-window log is used rather than fixed buckets or a token bucket
because the promise is about *any* window: fixed buckets admit up to ``2 * limit``
across a bucket boundary. Memory stays bounded: timestamps older than the window
are dropped, batches are stored as one ``(time, count)`` record, and peers with
nothing in the window are forgotten.

Refusals are all-or-nothing: a batch of ``n`` that does not fit consumes nothing.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from peeros.errors import QuotaExceeded

Clock = Callable[[], float]


@dataclass(slots=True)
class _Log:
    """Admissions of one peer still inside the window, oldest first."""

    records: deque[tuple[float, int]] = field(default_factory=deque)
    used: int = 0

    def expire(self, horizon: float) -> None:
        """Drop records at or before ``horizon`` (now - window)."""
        while self.records and self.records[0][0] <= horizon:
            self.used -= self.records.popleft()[1]


class TaskQuota:
    """At most ``limit`` tasks per peer in any sliding window of ``window`` seconds.

    ``limit <= 0`` means unlimited (nothing is recorded). Not thread-safe: the peer
    calls it from its event loop only.
    """

    def __init__(self, limit: int, window: float, clock: Clock = time.monotonic) -> None:
        if limit > 0 and window <= 0:
            raise ValueError(f"window must be > 0 seconds, got {window}")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._logs: dict[str, _Log] = {}
        self._last_sweep = clock()

    @property
    def unlimited(self) -> bool:
        return self.limit <= 0

    def check_and_consume(self, peer_id: str, n: int = 1) -> None:
        """Admit ``n`` tasks from ``peer_id`` now, or raise :class:`QuotaExceeded`.

        On refusal nothing is consumed; the message says how long until the whole
        batch would fit.
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if self.unlimited or n == 0:
            return
        now = self._clock()
        self._maybe_sweep(now)
        log = self._logs.get(peer_id) or _Log()
        log.expire(now - self.window)
        if log.used + n > self.limit:
            raise QuotaExceeded(self._refusal(peer_id, log, n, now))
        if log.records and log.records[-1][0] == now:  # same instant: one record
            log.records[-1] = (now, log.records[-1][1] + n)
        else:
            log.records.append((now, n))
        log.used += n
        self._logs[peer_id] = log

    def usage(self, peer_id: str) -> tuple[int, int, float]:
        """``(used, limit, window)`` for ``peer_id`` as of now."""
        log = self._logs.get(peer_id)
        if log is None or self.unlimited:
            return 0, self.limit, self.window
        log.expire(self._clock() - self.window)
        if not log.records:
            del self._logs[peer_id]
        return log.used, self.limit, self.window

    def prune(self) -> int:
        """Forget peers with nothing left in the window; return how many were dropped."""
        horizon = self._clock() - self.window
        idle = []
        for peer_id, log in self._logs.items():
            log.expire(horizon)
            if not log.records:
                idle.append(peer_id)
        for peer_id in idle:
            del self._logs[peer_id]
        return len(idle)

    def tracked_peers(self) -> int:
        """How many peers have a log in memory (for tests and the dashboard)."""
        return len(self._logs)

    def _maybe_sweep(self, now: float) -> None:
        # Amortised: at most one full sweep per window keeps one-off peers from
        # accumulating, at O(1) average cost per call.
        if now - self._last_sweep >= self.window:
            self._last_sweep = now
            self.prune()

    def _refusal(self, peer_id: str, log: _Log, n: int, now: float) -> str:
        who = peer_id if len(peer_id) <= 8 else peer_id[:8] + "…"
        head = (
            f"quota exceeded: peer {who} may submit {self.limit} tasks "
            f"per {self.window:g}s; {log.used} used"
        )
        if n > 1:
            head += f", {n} requested"
        if n > self.limit:
            return head + f"; a batch of {n} can never fit, split it"
        # The batch fits once the oldest records holding `excess` tasks have expired.
        excess = log.used + n - self.limit
        freed = 0
        retry_at = now
        for stamp, count in log.records:
            freed += count
            retry_at = stamp + self.window
            if freed >= excess:
                break
        return head + f", retry in {max(retry_at - now, 0.0):.1f}s"
