"""The order in which an origin sends a placed batch to its executing peers.

Every chunk is one ``/v1/execute`` request, answered when all its tasks have ended. A
peer starts working when its first chunk has arrived, and the origin builds and sends the
chunks one after the other; so each peer's first chunk is small (it is built and parsed
quickly) and goes out before anyone's second, and the rest follow round-robin. Pure
logic: :meth:`peeros.compute.tasks.TaskService._place_and_run` does the sending.
"""

from __future__ import annotations

import itertools
from typing import TypeVar

T = TypeVar("T")

#: Tasks per ``/v1/execute`` request.
CHUNK = 500
#: Tasks in the first request to each peer.
FIRST_CHUNK = 100


def plan(
    groups: dict[str, list[T]], size: int = CHUNK, first: int = FIRST_CHUNK
) -> list[tuple[str, list[T]]]:
    """``(peer, tasks)`` chunks covering every group in order: per peer a first chunk of
    ``first`` tasks, then chunks of ``size``; the peers' chunks interleaved round-robin."""
    per_peer: list[list[tuple[str, list[T]]]] = []
    for peer, tasks in groups.items():
        cuts = [0, *range(min(first, len(tasks)), len(tasks), size), len(tasks)]
        per_peer.append([(peer, tasks[a:b]) for a, b in itertools.pairwise(cuts) if b > a])
    out: list[tuple[str, list[T]]] = []
    for i in range(max((len(c) for c in per_peer), default=0)):
        out.extend(c[i] for c in per_peer if i < len(c))
    return out
