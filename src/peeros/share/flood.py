"""Flooding search without a tracker (Gnutella 0.4 style): the pure decisions.

A query carries a random 16-byte id, a TTL and a hop count. A peer answers from its
own files and forwards to every live neighbour except the one it came from, never
twice for one id, with the TTL decremented; at TTL 0 it stops. Hits travel back along
the path the query came (here: as the responses of the forwarded requests).

Neighbours are kept alive with hellos; a neighbour silent for ``dead_after`` seconds
is dropped from the live list, and while fewer neighbours are alive than were
configured, new ones are learned from the lists the neighbours sent (Gnutella's
ping/pong discovery). No sockets, no clock: callers pass ``now``.
"""

from __future__ import annotations

import fnmatch
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["MAX_TTL", "Decision", "Neighbours", "SeenCache", "decide", "matches"]

#: Largest TTL a query may carry (Gnutella used 7; more floods the whole network anyway).
MAX_TTL = 16


class SeenCache:
    """Query ids seen recently: bounded (oldest forgotten first) and expiring."""

    def __init__(self, capacity: int = 10_000, ttl: float = 300.0) -> None:
        self.capacity = capacity
        self.ttl = ttl
        self._seen: OrderedDict[str, float] = OrderedDict()

    def add(self, qid: str, now: float) -> bool:
        """Remember ``qid``; False when it was already seen (a duplicate)."""
        while self._seen and next(iter(self._seen.values())) < now - self.ttl:
            self._seen.popitem(last=False)
        if qid in self._seen:
            return False
        while len(self._seen) >= self.capacity:
            self._seen.popitem(last=False)
        self._seen[qid] = now
        return True

    def __len__(self) -> int:
        return len(self._seen)


@dataclass(frozen=True)
class Decision:
    duplicate: bool
    #: answer from our own files
    answer: bool
    forward_to: tuple[str, ...] = ()
    #: the TTL the forwarded copies carry
    ttl: int = 0


def decide(
    seen: SeenCache, qid: str, ttl: int, sender: str | None, neighbours: Iterable[str], now: float
) -> Decision:
    """What to do with query ``qid`` arriving from ``sender`` (None: our own user's)."""
    if not seen.add(qid, now):
        return Decision(duplicate=True, answer=False)
    if sender is None:  # our own search: send it out with the TTL the user gave
        return Decision(False, False, tuple(sorted(set(neighbours))), ttl)
    rest = ttl - 1
    targets = tuple(sorted(set(neighbours) - {sender})) if rest > 0 else ()
    return Decision(False, True, targets, rest)


def matches(name: str, query: str, mode: str) -> bool:
    if mode == "exact":
        return name == query
    if mode == "substring":
        return query.lower() in name.lower()
    return fnmatch.fnmatchcase(name, query)


@dataclass
class _Link:
    configured: bool
    last_ok: float | None = None
    their_list: tuple[str, ...] = ()
    #: when a learned link was added (it must answer within ``dead_after``)
    since: float = 0.0


@dataclass
class Neighbours:
    """The neighbour table of one peer."""

    me: str
    dead_after: float
    links: dict[str, _Link] = field(default_factory=dict)
    #: how many live neighbours to keep: the most this peer has had at once
    target: int = 0

    @classmethod
    def configured(cls, me: str, addresses: Iterable[str], dead_after: float) -> Neighbours:
        links = {a: _Link(configured=True) for a in addresses if a != me}
        return cls(me, dead_after, links, len(links))

    def alive(self, now: float) -> list[str]:
        return sorted(
            a
            for a, link in self.links.items()
            if link.last_ok is not None and now - link.last_ok <= self.dead_after
        )

    def heard(self, address: str, their_list: Iterable[str], now: float) -> None:
        """A hello went through (either way): ``address`` is alive and lists these."""
        if address == self.me:
            return
        link = self.links.setdefault(address, _Link(configured=False, since=now))
        link.last_ok = now
        link.their_list = tuple(a for a in their_list if a != self.me)

    def to_greet(self, now: float) -> list[str]:
        """Everyone to send a hello to; learned links that died are dropped first,
        configured ones are kept (and greeted) so that they are found when they return."""
        for a in [a for a, link in self.links.items() if not link.configured]:
            link = self.links[a]
            if now - (link.last_ok if link.last_ok is not None else link.since) > self.dead_after:
                del self.links[a]
        self.target = max(self.target, len(self.alive(now)))
        self._learn(now)
        return sorted(self.links)

    def _learn(self, now: float) -> None:
        alive = self.alive(now)
        missing = self.target - len(alive)
        if missing <= 0:
            return
        candidates = [
            a
            for link in self.links.values()
            for a in link.their_list
            if a not in self.links and a != self.me
        ]
        for a in dict.fromkeys(candidates):
            if missing <= 0:
                break
            self.links[a] = _Link(configured=False, since=now)
            missing -= 1
