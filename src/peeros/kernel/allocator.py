"""Contiguous memory allocation with first, best, worst and next fit.

Sources: A. Silberschatz, P. B. Galvin, G. Gagne, *Operating System Concepts*, 10th ed.,
§9.2.2 "Memory Allocation" (first/best/worst fit, external fragmentation) and its
exercise on holes of 100, 500, 200, 300 and 600 KB; A. S. Tanenbaum, H. Bos, *Modern
Operating Systems*, 4th ed., §3.2.3 "Managing Free Memory" (next fit, coalescing).

Contract and invariants:

* The pool is ``size`` units at addresses ``[0, size)``. Blocks never overlap; holes are
  the *maximal* free gaps between blocks, so two holes are never adjacent: coalescing
  on :meth:`Allocator.free` is structural, not a separate pass.
* A request takes the LOW end of the chosen hole (splitting it); the rest stays free.
  Ties (best/worst fit) go to the lowest address. Next fit keeps a *rover* at the end of
  the last placement and searches from the hole containing or following it, wrapping.
* Every failing call raises an :class:`AllocationError` subclass and changes nothing.
  :class:`NoFit` is its own class because a live system waits on it and retries.
* ``external_fragmentation_pct = 100 * (1 - largest_free / free)`` when ``free > 0``,
  else 0: the share of free memory unusable by a request as large as all free memory.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from peeros.errors import BadRequest, Conflict, NotFound, PeerOSError

__all__ = [
    "POLICIES",
    "AllocationError",
    "Allocator",
    "Block",
    "DuplicateBlock",
    "Hole",
    "InvalidRequest",
    "NoFit",
    "Policy",
    "UnknownBlock",
    "simulate",
]

Policy = Literal["first", "best", "worst", "next"]
POLICIES: tuple[Policy, ...] = ("first", "best", "worst", "next")


class AllocationError(PeerOSError):
    """Base class of every allocator refusal (each subclass maps to an HTTP status)."""


class InvalidRequest(AllocationError, BadRequest, ValueError):
    """A size ≤ 0, a bad name or an unknown policy."""


class DuplicateBlock(AllocationError, Conflict):
    """A block with that name is already allocated."""


class UnknownBlock(AllocationError, NotFound):
    """No block has that name (never allocated, or already freed)."""


class NoFit(AllocationError, Conflict):
    """No single hole is large enough right now; a free may make one."""

    def __init__(self, message: str, requested: int, largest_free: int) -> None:
        super().__init__(message)
        self.requested = requested
        self.largest_free = largest_free


@dataclass(frozen=True, order=True)
class Hole:
    start: int
    size: int

    @property
    def end(self) -> int:
        return self.start + self.size


@dataclass(frozen=True, order=True)
class Block:
    start: int
    size: int
    name: str

    @property
    def end(self) -> int:
        return self.start + self.size


def _policy(policy: str) -> Policy:
    if policy not in POLICIES:
        raise InvalidRequest(f"unknown policy {policy!r}; choose one of {list(POLICIES)}")
    return policy


def _positive(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidRequest(f"{what} must be a positive integer, got {value!r}")
    return value


class Allocator:
    """A contiguous pool of ``size`` units managed by one placement policy."""

    def __init__(self, size: int, policy: str = "first") -> None:
        self._size = _positive(size, "pool size")
        self._policy = _policy(policy)
        self._blocks: list[Block] = []  # sorted by start
        self._by_name: dict[str, Block] = {}
        self._rover = 0  # next fit: end of the last placement

    @property
    def size(self) -> int:
        return self._size

    @property
    def policy(self) -> Policy:
        return self._policy

    def set_policy(self, policy: str) -> None:
        self._policy = _policy(policy)

    def blocks(self) -> list[Block]:
        """Allocated blocks in address order."""
        return list(self._blocks)

    def holes(self) -> list[Hole]:
        """Free holes in address order (maximal, hence never adjacent)."""
        holes: list[Hole] = []
        cursor = 0
        for block in self._blocks:
            if block.start > cursor:
                holes.append(Hole(cursor, block.start - cursor))
            cursor = block.end
        if cursor < self._size:
            holes.append(Hole(cursor, self._size - cursor))
        return holes

    def choose(self, size: int) -> Hole | None:
        """The hole the current policy would use for ``size`` units (no side effect)."""
        fits = [h for h in self.holes() if h.size >= size]
        if not fits:
            return None
        if self._policy == "first":
            return fits[0]
        if self._policy == "best":
            return min(fits, key=lambda h: (h.size, h.start))
        if self._policy == "worst":
            return min(fits, key=lambda h: (-h.size, h.start))
        # next fit: from the hole containing or following the rover, then wrap around
        after = [h for h in fits if h.end > self._rover]
        return (after or fits)[0]

    def allocate(self, name: str, size: int) -> Block:
        """Place a block of ``size`` units at the low end of the hole the policy picks."""
        if not isinstance(name, str) or not name:
            raise InvalidRequest(f"block name must be a non-empty string, got {name!r}")
        _positive(size, f"size of block {name!r}")
        if name in self._by_name:
            raise DuplicateBlock(f"a block named {name!r} is already allocated")
        hole = self.choose(size)
        if hole is None:
            largest = max((h.size for h in self.holes()), default=0)
            raise NoFit(
                f"no hole fits {size} units for {name!r} (largest hole {largest}, "
                f"free {self._size - self.used()}); wait for a free",
                requested=size,
                largest_free=largest,
            )
        return self._place(name, hole.start, size)

    def free(self, name: str) -> Block:
        """Release the block; it merges with any neighbouring hole."""
        block = self._by_name.pop(name, None)
        if block is None:
            raise UnknownBlock(f"no block named {name!r} (never allocated or already freed)")
        self._blocks.remove(block)
        return block

    def used(self) -> int:
        return sum(b.size for b in self._blocks)

    def stats(self) -> dict[str, Any]:
        """Totals and fragmentation (see the module docstring for the percentage)."""
        holes = self.holes()
        used = self.used()
        free = self._size - used
        largest = max((h.size for h in holes), default=0)
        return {
            "total": self._size,
            "used": used,
            "free": free,
            "largest_free": largest,
            "hole_count": len(holes),
            "external_fragmentation_pct": 100.0 * (1 - largest / free) if free else 0.0,
        }

    def to_dict(self) -> dict[str, Any]:
        """The memory map: every segment in address order, blocks and holes alike."""
        segments: list[dict[str, Any]] = [
            {"kind": "block", "name": b.name, "start": b.start, "size": b.size}
            for b in self._blocks
        ]
        segments += [{"kind": "hole", "start": h.start, "size": h.size} for h in self.holes()]
        segments.sort(key=lambda s: int(s["start"]))
        return {
            "size": self._size,
            "policy": self._policy,
            "segments": segments,
            "stats": self.stats(),
        }

    def _place(self, name: str, start: int, size: int) -> Block:
        block = Block(start, size, name)
        insort(self._blocks, block)
        self._by_name[name] = block
        self._rover = block.end
        return block


def simulate(policy: str, holes: Sequence[int], requests: Sequence[int]) -> dict[str, Any]:
    """Run the textbook exercise: place ``requests`` in order into the given ``holes``.

    Address model: hole ``i`` starts at ``sum(holes[:i]) + i``; the single unit between
    consecutive holes is allocated (a separator) so they can never coalesce, and the
    separators are not reported. A request that fits nowhere gets ``None`` (it must
    wait) and the simulation continues with the next one. ``hole_index`` names the
    original hole a placement fell in; ``hole_size`` is that hole's size at the time
    (e.g. 288 for the remainder of the 500 hole). ``final_holes`` lists the free holes
    left, in address order; a hole used up exactly disappears from it.
    """
    policy = _policy(policy)
    if not isinstance(holes, list | tuple) or not holes:
        raise InvalidRequest("holes must be a non-empty list of sizes")
    if not isinstance(requests, list | tuple):
        raise InvalidRequest("requests must be a list of sizes")
    sizes = [_positive(h, f"holes[{i}]") for i, h in enumerate(holes)]
    asks = [_positive(r, f"requests[{i}]") for i, r in enumerate(requests)]
    starts = [sum(sizes[:i]) + i for i in range(len(sizes))]
    pool = Allocator(sum(sizes) + len(sizes) - 1, policy)
    for i, start in enumerate(starts[1:]):
        pool._place(f"#separator{i}", start - 1, 1)
    pool._rover = 0  # next fit starts at the bottom of memory

    def index_of(address: int) -> int:
        return max(i for i, s in enumerate(starts) if s <= address)

    placements: list[dict[str, int] | None] = []
    for i, ask in enumerate(asks):
        hole = pool.choose(ask)
        if hole is None:
            placements.append(None)
            continue
        pool._place(f"request{i}", hole.start, ask)
        placements.append(
            {
                "request": ask,
                "hole_index": index_of(hole.start),
                "hole_size": hole.size,
                "start": hole.start,
            }
        )
    return {
        "policy": policy,
        "placements": placements,
        "final_holes": [h.size for h in pool.holes()],
    }
