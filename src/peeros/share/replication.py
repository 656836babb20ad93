"""The replication planner: which peer should fetch a copy of which file.

Pure: the index (who holds what), the live peers, the copies already being made and
the replication factor in; instructions out. The tracker's coordinator runs it when a
peer asks for work, so a holder that dies (it leaves the live list) is re-replicated
on the next round without any special case (Ceph's placement by recomputation).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Held", "Replicate", "plan"]


@dataclass(frozen=True)
class Held:
    peer_id: str
    sha256: str
    name: str
    size: int


@dataclass(frozen=True)
class Replicate:
    """``target`` should fetch ``sha256`` (from ``sources``) into its ``replicated/``."""

    target: str
    sha256: str
    name: str
    size: int
    sources: tuple[str, ...]


def plan(
    held: Iterable[Held],
    live: Iterable[str],
    factor: int,
    in_flight: Iterable[tuple[str, str]] = (),
) -> list[Replicate]:
    """Instructions that bring every file with a live holder up to ``factor`` live copies.

    Copies in flight ((target, sha256)) count as copies. Targets are the live peers that
    hold the fewest files (ties by peer id), so copies spread evenly and the plan is
    deterministic. A file with no live holder cannot be copied and is skipped.
    """
    alive = sorted(set(live))
    alive_set = set(alive)
    flying = set(in_flight)
    holders: dict[str, set[str]] = {}
    meta: dict[str, tuple[str, int]] = {}
    load = dict.fromkeys(alive, 0)
    for h in held:
        if h.peer_id in alive_set:
            holders.setdefault(h.sha256, set()).add(h.peer_id)
            meta.setdefault(h.sha256, (h.name, h.size))
            load[h.peer_id] += 1
    out: list[Replicate] = []
    for sha in sorted(holders):
        have = holders[sha]
        coming = {t for t, s in flying if s == sha and t in alive_set and t not in have}
        missing = factor - len(have) - len(coming)
        if missing <= 0:
            continue
        candidates = sorted(
            (p for p in alive if p not in have and p not in coming), key=lambda p: (load[p], p)
        )
        name, size = meta[sha]
        for target in candidates[:missing]:
            out.append(Replicate(target, sha, name, size, tuple(sorted(have))))
            load[target] += 1
    return out
