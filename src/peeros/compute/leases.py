"""Placement leases: placements the tracker granted ahead of need.

Asking the tracker where to run each task costs one mutual-TLS round trip per
submission, on the critical path of every single task. Instead, an origin keeps a small
pool of placements the tracker already chose (and counts as placed, exactly as it counts
any placement until the chosen peer's next heartbeat), and hands them out in the order
they were granted, so a burst of single tasks still spreads like the tracker's own round
robin. The pool is topped up in the background when it runs low; a lease older than
``max_age`` (about one heartbeat interval, after which the tracker has forgotten it and
the load it was chosen on is stale) is dropped unused.

A lease stands for one task at a time on its peer, not for one task ever: when a task
that ran on a lease ends, the origin gives the lease back (:meth:`LeasePool.give_back`)
and the next single task takes it first. Consecutive tasks of one origin thus go to the
peer that ran the last one — its worker process and its event loop are still warm, like
Ray's reuse of a worker lease — while a burst of concurrent tasks still spreads over
every lease the tracker granted. A given-back lease keeps its grant time: it expires when
it would have, so the tracker never sees more of this origin's tasks on a peer than it
placed there since that peer's last heartbeat.

Batches larger than the pool, and tasks the pool cannot serve (every lease names a peer
the task already failed on), ask the tracker directly, in one request as before. A lease
never outlives evidence against its peer: when a peer cannot be reached, its leases are
forgotten, and a retry never takes a lease on a peer the task failed on.

:class:`LeasePool` is pure (it takes ``now``); :class:`LeasedPlacer` adds the tracker
calls and the background refill.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection

from peeros.errors import PeerOSError
from peeros.protocol import Placement

log = logging.getLogger(__name__)

#: Ask the tracker for ``count`` placements avoiding ``exclude`` (one request).
Ask = Callable[[int, list[str]], Awaitable[list[Placement]]]

#: Seconds between background refills after one failed (tracker down).
REFILL_BACKOFF = 1.0


class LeasePool:
    """Granted placements, warmest first, then oldest first; pure (every method takes
    ``now``)."""

    def __init__(self, size: int, max_age: float) -> None:
        if size < 1:
            raise ValueError("a lease pool holds at least one lease")
        self.size = size
        self.max_age = max_age
        self._leases: deque[tuple[float, Placement]] = deque()
        #: Grant times of the leases taken and not yet given back, by peer address.
        self._lent: dict[str, list[float]] = {}
        #: The earliest grant time of a lease held (in the pool or lent), or earlier.
        self._oldest = math.inf

    def __len__(self) -> int:
        return len(self._leases)

    def _expire(self, now: float) -> None:
        if now - self._oldest <= self.max_age:
            return  # (the common case: nothing held is old enough, no scan)
        oldest = now - self.max_age
        self._leases = deque(lease for lease in self._leases if lease[0] >= oldest)
        for address, times in list(self._lent.items()):
            kept = [granted for granted in times if granted >= oldest]
            if kept:
                self._lent[address] = kept
            else:
                del self._lent[address]
        held = [granted for granted, _ in self._leases]
        held += [granted for times in self._lent.values() for granted in times]
        self._oldest = min(held, default=math.inf)

    def _lend(self, leases: list[tuple[float, Placement]]) -> list[Placement]:
        for granted, placement in leases:
            self._lent.setdefault(placement.address, []).append(granted)
        return [placement for _, placement in leases]

    def take(
        self, count: int, exclude: Collection[str], now: float, lend: bool = True
    ) -> list[Placement] | None:
        """``count`` leases on peers not in ``exclude`` (given-back ones first, then the
        oldest), or None (and nothing taken) when the pool cannot serve them all. Lent
        leases can be given back; the others (``lend=False``) are used up."""
        self._expire(now)
        if count > len(self._leases):
            return None
        if not exclude and count == 1:  # the common case, without a scan
            taken = [self._leases.popleft()]
            return self._lend(taken) if lend else [taken[0][1]]
        banned = set(exclude)
        picked = [i for i, (_, p) in enumerate(self._leases) if p.peer_id not in banned][:count]
        if len(picked) < count:
            return None
        chosen = set(picked)
        kept = [lease for i, lease in enumerate(self._leases) if i not in chosen]
        taken = [self._leases[i] for i in picked]
        self._leases = deque(kept)
        return self._lend(taken) if lend else [placement for _, placement in taken]

    def give_back(self, placement: Placement, now: float, warm: bool = True) -> bool:
        """A task that ran on ``placement`` (a lease :meth:`take` lent) has ended: the
        lease goes back to the front (``warm``: for the next task) or the back, unless
        it has expired meanwhile or its peer was forgotten. True if it is back."""
        times = self._lent.get(placement.address)
        if not times:
            return False
        granted = times.pop()  # the newest: whichever it is, it names the same peer
        if not times:
            del self._lent[placement.address]
        if now - granted > self.max_age:
            return False
        if warm:
            self._leases.appendleft((granted, placement))
        else:
            self._leases.append((granted, placement))
        return True

    def wanted(self, now: float) -> int:
        """How many leases to ask for now: none until the pool is down to half."""
        self._expire(now)
        if len(self._leases) > self.size // 2:
            return 0
        return self.size - len(self._leases)

    def add(self, placements: list[Placement], now: float) -> None:
        self._leases.extend((now, p) for p in placements)
        self._oldest = min(self._oldest, now)
        excess = len(self._leases) - 2 * self.size
        if excess > 0:  # two refills raced: keep the newest
            by_age = sorted(range(len(self._leases)), key=lambda i: self._leases[i][0])
            drop = set(by_age[:excess])
            self._leases = deque(x for i, x in enumerate(self._leases) if i not in drop)

    def forget(self, address: str) -> int:
        """Drop the leases on the peer at ``address`` (it could not be reached), the ones
        out with tasks included: they are not given back."""
        before = len(self._leases)
        self._leases = deque(lease for lease in self._leases if lease[1].address != address)
        self._lent.pop(address, None)
        return before - len(self._leases)


class LeasedPlacer:
    """Places tasks from a :class:`LeasePool`, asking the tracker only when it must.

    :meth:`place` has the signature of the tracker call it wraps; :meth:`run` is the
    background refill loop (run it in the peer's task group).
    """

    def __init__(
        self,
        ask: Ask,
        size: int,
        max_age: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ask = ask
        self.pool = LeasePool(size, max_age)
        self.clock = clock
        self._wake = asyncio.Event()
        self._refilling = False
        self._retry_at = 0.0

    def take_now(self, count: int, exclude: list[str], lend: bool = True) -> list[Placement] | None:
        """``count`` placements from the pool without waiting, or None (nothing taken);
        lent (to be given back when their tasks end) unless ``lend`` is False."""
        now = self.clock()
        leased = self.pool.take(count, exclude, now, lend)
        # A plain first try that finds the pool empty tops it up in its own request
        # (:meth:`place`); for any other the pool is refilled behind, or a stream of
        # tasks with exclusions (``elsewhere``) would ask the tracker every time.
        tops_up_itself = leased is None and not exclude and count <= self.pool.size
        refill = not self._refilling and now >= self._retry_at and not tops_up_itself
        if refill and self.pool.wanted(now):
            self._wake.set()
        return leased

    async def place(self, count: int, exclude: list[str]) -> list[Placement]:
        leased = self.take_now(count, exclude, lend=False)  # (callers give nothing back)
        if leased is not None:
            return leased
        now = self.clock()
        # Ask now; a small first-try request also tops the pool up in the same call.
        top_up = 0
        if not exclude and not self._refilling and count <= self.pool.size:
            top_up = self.pool.wanted(now)
        if not top_up:
            return await self.ask(count, exclude)
        self._refilling = True
        try:
            placements = await self.ask(count + top_up, exclude)
        finally:
            self._refilling = False
        self.pool.add(placements[count:], self.clock())
        return placements[:count]

    def give_back(self, placement: Placement, warm: bool = True) -> None:
        """The task that ran on the lease ``placement`` has ended: reuse the lease (first,
        if ``warm``)."""
        self.pool.give_back(placement, self.clock(), warm)

    def forget(self, address: str) -> None:
        """The peer at ``address`` could not be reached: use none of its leases."""
        if self.pool.forget(address):
            log.info("dropped the placement leases on unreachable peer %s", address)

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            want = self.pool.wanted(self.clock())
            if not want:
                continue
            self._refilling = True
            try:
                got = await self.ask(want, [])
            except PeerOSError as exc:
                log.info("placement lease refill failed: %s", exc)
                self._retry_at = self.clock() + REFILL_BACKOFF
            else:
                self.pool.add(got, self.clock())
            finally:
                self._refilling = False
