"""Where owned-file replicas go: pure decisions, no I/O (dask's state machine style).

:func:`choose_holders` picks the holders of a new file; :func:`plan` says, given every
owned file and the live peers, which copies must be made to restore the replica count
after holders died. Both prefer the peers holding the fewest replicas, ties broken by
peer id, so decisions are reproducible and spread evenly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["CopyInstruction", "OwnedFile", "choose_holders", "plan"]


@dataclass(frozen=True)
class OwnedFile:
    owner_id: str
    name: str
    holders: tuple[str, ...]
    #: this file's own replica count; None: the ``factor`` given to :func:`plan`
    replicas: int | None = None


@dataclass(frozen=True)
class CopyInstruction:
    """Ask ``source`` (a live holder) to push its copy of the file to ``target``."""

    owner_id: str
    name: str
    source: str
    target: str


def _load(files: Iterable[OwnedFile]) -> Counter[str]:
    return Counter(h for f in files for h in f.holders)


def choose_holders(
    live: Iterable[str], exclude: Iterable[str], count: int, load: Mapping[str, int] | None = None
) -> list[str]:
    """``count`` distinct live peers not in ``exclude``, least loaded first.

    Returns fewer than ``count`` when there are not enough; the caller decides.
    """
    banned = set(exclude)
    held = load or {}
    pool = sorted({p for p in live if p not in banned}, key=lambda p: (held.get(p, 0), p))
    return pool[:count]


def plan(
    files: Sequence[OwnedFile], live_peers: Iterable[str], factor: int
) -> list[CopyInstruction]:
    """The copies that bring every file back to ``factor`` live holders.

    A file with no live holder cannot be repaired and is skipped. New holders are never
    the owner nor a current holder, and the plan accounts for its own copies when
    spreading load.
    """
    live = set(live_peers)
    load = _load(files)
    out: list[CopyInstruction] = []
    for f in files:
        survivors = [h for h in f.holders if h in live]
        missing = (f.replicas or factor) - len(survivors)
        if not survivors or missing <= 0:
            continue
        targets = choose_holders(live, {f.owner_id, *f.holders}, missing, load)
        for i, target in enumerate(targets):
            source = survivors[i % len(survivors)]
            out.append(CopyInstruction(f.owner_id, f.name, source, target))
            load[target] += 1
    return out
