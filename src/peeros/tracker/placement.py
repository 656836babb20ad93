"""Least-loaded placement: pure, deterministic, no I/O.

A peer's busyness is ``(queued + running + placed) / slots`` where ``placed`` counts
the tasks this tracker sent its way since the peer's last heartbeat. Without that term
every request between two heartbeats would go to the same "least-loaded" peer (the
herd effect); with it, a burst spreads like round robin over equally idle peers.
Ties go to the lower CPU %, then to the lower peer id, so decisions are reproducible.

Invariant (checked by a property test): an idle peer (busyness 0) is always preferred
to a peer at or over capacity.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    peer_id: str
    slots: int
    queued: int = 0
    running: int = 0
    placed: int = 0
    cpu_percent: float = 0.0

    @property
    def busyness(self) -> float:
        return (self.queued + self.running + self.placed) / max(self.slots, 1)


def choose(candidates: Iterable[Candidate], exclude: Iterable[str] = ()) -> Candidate | None:
    """The candidate that should take the next task, or None when there is none."""
    banned = set(exclude)
    pool = [c for c in candidates if c.peer_id not in banned]
    if not pool:
        return None
    return min(pool, key=lambda c: (c.busyness, c.cpu_percent, c.peer_id))


def choose_many(
    candidates: Iterable[Candidate], count: int, exclude: Iterable[str] = ()
) -> list[str]:
    """The peer ids that ``count`` successive :func:`choose` calls would return, each
    seeing the tasks placed before it (``placed`` + 1), in O(count log peers); empty
    when there is no candidate."""
    banned = set(exclude)
    pool = [c for c in candidates if c.peer_id not in banned]
    if not pool:
        return []
    heap = [(c.busyness, c.cpu_percent, c.peer_id, i) for i, c in enumerate(pool)]
    heapq.heapify(heap)
    extra = [0] * len(pool)
    chosen = []
    for _ in range(count):
        _, cpu, peer_id, i = heapq.heappop(heap)
        chosen.append(peer_id)
        extra[i] += 1
        c = pool[i]
        busy = (c.queued + c.running + c.placed + extra[i]) / max(c.slots, 1)
        heapq.heappush(heap, (busy, cpu, peer_id, i))
    return chosen
