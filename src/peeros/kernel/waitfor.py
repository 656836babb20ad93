"""Deadlock detection: wait-for graph cycles and the multiple-instance matrix algorithm.

Sources: A. Silberschatz, P. B. Galvin, G. Gagne, *Operating System Concepts*, 10th ed.,
§8.7.1 "Single Instance of Each Resource Type" (wait-for graph, Fig. 8.11) and §8.7.2
"Several Instances of a Resource Type" (detection algorithm); D. B. Johnson, "Finding
all the elementary circuits of a directed graph", SIAM J. Comput. 4(1), 1975 (cycle
enumeration); R. Tarjan, "Depth-first search and linear graph algorithms", 1972 (SCCs).

Contract:

* An edge ``(a, b)`` means *a waits for b* (b holds something a wants).
* :func:`find_cycles` lists every elementary cycle exactly once, rotated to start at its
  smallest node, the list sorted; :func:`deadlocked` is the sorted set of nodes on a
  cycle. With single-instance resources a cycle is a deadlock (§8.7.1). Processes that
  merely wait on a deadlocked one are blocked too, but are not reported as deadlocked.
* :func:`detect_matrix` is §8.7.2: with several instances per resource a cycle is
  necessary but not sufficient, so it simulates optimistic completion instead.
* :func:`check` accepts either JSON form. For the graph form it returns
  ``{"deadlocked", "cycles"}``; for the matrix form ``{"deadlocked", "finish_order"}``
  (no ``"cycles"``: there is no graph to have cycles in).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from peeros.errors import BadRequest

__all__ = [
    "DeadlockInputError",
    "WaitForGraph",
    "check",
    "deadlocked",
    "detect_matrix",
    "find_cycles",
]

Edge = tuple[str, str]
_GRAPH_KEYS = frozenset({"edges", "nodes", "labels"})
_MATRIX_KEYS = frozenset({"available", "allocation", "request", "resources"})


class DeadlockInputError(BadRequest, ValueError):
    """Malformed detection input; the message names the problem."""


def _node(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise DeadlockInputError(f"{where} must be a non-empty string, got {value!r}")
    return value


def _edges(edges: Iterable[object]) -> list[Edge]:
    if isinstance(edges, str | bytes | Mapping) or not isinstance(edges, Iterable):
        raise DeadlockInputError("edges must be a list of [waiter, holder] pairs")
    out: list[Edge] = []
    for i, edge in enumerate(edges):
        if not isinstance(edge, list | tuple) or len(edge) != 2:
            raise DeadlockInputError(f"edges[{i}] must be a [waiter, holder] pair, got {edge!r}")
        out.append((_node(edge[0], f"edges[{i}][0]"), _node(edge[1], f"edges[{i}][1]")))
    return out


def _adjacency(edges: Iterable[Edge]) -> dict[str, set[str]]:
    adj: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        adj[a].add(b)
        adj.setdefault(b, set())
    return dict(adj)


def _reverse(adj: Mapping[str, set[str]]) -> dict[str, set[str]]:
    back: dict[str, set[str]] = {n: set() for n in adj}
    for a, succs in adj.items():
        for b in succs:
            back[b].add(a)
    return back


def _scc_of(
    start: str, adj: Mapping[str, set[str]], back: Mapping[str, set[str]], allowed: set[str]
) -> set[str]:
    """Nodes strongly connected to ``start`` within ``allowed``: reach forward ∩ backward."""

    def reach(succ: Mapping[str, set[str]]) -> set[str]:
        seen, stack = {start}, [start]
        while stack:
            for nxt in succ.get(stack.pop(), ()):
                if nxt in allowed and nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen

    return reach(adj) & reach(back)


def _circuits_from(start: str, adj: Mapping[str, set[str]], comp: set[str]) -> list[list[str]]:
    """Johnson's CIRCUIT procedure from ``start`` inside its component (iterative)."""
    succ = {n: sorted(adj[n] & comp) for n in comp}
    found: list[list[str]] = []
    blocked: set[str] = {start}
    b_map: dict[str, set[str]] = defaultdict(set)
    closed: set[str] = set()
    path = [start]
    stack = [(start, list(reversed(succ[start])))]
    while stack:
        node, todo = stack[-1]
        if todo:
            nxt = todo.pop()
            if nxt == start:
                found.append(list(path))
                closed.update(path)
            elif nxt not in blocked:
                path.append(nxt)
                stack.append((nxt, list(reversed(succ[nxt]))))
                closed.discard(nxt)
                blocked.add(nxt)
            continue
        if node in closed:  # unblock node and, transitively, whoever waited on it
            pending = [node]
            while pending:
                n = pending.pop()
                if n in blocked:
                    blocked.discard(n)
                    pending.extend(b_map.pop(n, ()))
        else:
            for w in succ[node]:
                b_map[w].add(node)
        stack.pop()
        path.pop()
    return found


def find_cycles(edges: Iterable[Sequence[str]]) -> list[list[str]]:
    """Every elementary cycle once, starting at its smallest node, in sorted order."""
    adj = _adjacency(_edges(edges))
    back = _reverse(adj)
    cycles: list[list[str]] = []
    remaining = set(adj)
    # Cycles through `start` using only nodes >= start: each cycle is found exactly once,
    # from its smallest node, so it is already in canonical rotation.
    for start in sorted(adj):
        comp = _scc_of(start, adj, back, remaining)
        cycles.extend(_circuits_from(start, adj, comp))
        remaining.discard(start)
    return sorted(cycles)


def deadlocked(edges: Iterable[Sequence[str]]) -> list[str]:
    """Sorted nodes lying on at least one cycle (a self-loop counts)."""
    adj = _adjacency(_edges(edges))
    back, everyone = _reverse(adj), set(adj)
    on_cycle: set[str] = set()
    for n in sorted(adj):
        if n not in on_cycle:
            comp = _scc_of(n, adj, back, everyone)
            if len(comp) > 1 or n in adj[n]:
                on_cycle |= comp
    return sorted(on_cycle)


class WaitForGraph:
    """A live wait-for graph over processes blocked on locks, semaphores and resources.

    ``add_wait(waiter, holder, resource)`` records an edge labelled by what is awaited;
    an edge lives while it has at least one reason (or was added without a label).
    Removal of unknown edges or nodes is a no-op, so callers can clean up unconditionally.
    """

    def __init__(self) -> None:
        self._labels: dict[Edge, set[str]] = {}

    def add_wait(self, waiter: str, holder: str, resource: str | None = None) -> None:
        edge = (_node(waiter, "waiter"), _node(holder, "holder"))
        labels = self._labels.setdefault(edge, set())
        if resource is not None:
            labels.add(_node(resource, "resource"))

    def remove_waits(self, waiter: str, resource: str | None = None) -> None:
        """``waiter`` stopped waiting: for ``resource`` only, or for everything."""
        for edge in [e for e in self._labels if e[0] == waiter]:
            labels = self._labels[edge]
            if resource is None:
                del self._labels[edge]
            elif resource in labels:
                labels.discard(resource)
                if not labels:
                    del self._labels[edge]

    def remove_node(self, node: str) -> None:
        """``node`` is gone (finished, killed): drop every edge in or out of it."""
        for edge in [e for e in self._labels if node in e]:
            del self._labels[edge]

    def edges(self) -> list[Edge]:
        return sorted(self._labels)

    def cycles(self) -> list[list[str]]:
        return find_cycles(self.edges())

    def deadlocked(self) -> list[str]:
        return deadlocked(self.edges())

    def to_dict(self) -> dict[str, Any]:
        """``{"nodes", "edges", "labels"}``; ``labels[i]`` is what ``edges[i]`` waits on.

        The result is itself valid input for :func:`check`.
        """
        edges = self.edges()
        return {
            "nodes": sorted({n for e in edges for n in e}),
            "edges": [list(e) for e in edges],
            "labels": [sorted(self._labels[e]) for e in edges],
        }


def _count_vector(value: object, width: int | None, where: str) -> list[int]:
    if not isinstance(value, list | tuple):
        raise DeadlockInputError(f"{where} must be a list of counts, got {value!r}")
    if width is not None and len(value) != width:
        raise DeadlockInputError(f"{where} has {len(value)} entries, expected {width}")
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise DeadlockInputError(f"{where}[{i}] must be a non-negative integer, got {v!r}")
    return list(value)


def _matrix(
    data: Mapping[str, Any],
) -> tuple[list[int], dict[str, list[int]], dict[str, list[int]]]:
    for key in ("available", "allocation", "request"):
        if key not in data:
            raise DeadlockInputError(f"matrix form is missing field {key!r}")
    available = _count_vector(data["available"], None, "available")
    if not available:
        raise DeadlockInputError("available must list at least one resource")
    width = len(available)
    if "resources" in data:
        names = data["resources"]
        if not isinstance(names, list) or len(names) != width:
            raise DeadlockInputError(f"resources must be a list of {width} names")
    tables: dict[str, dict[str, list[int]]] = {}
    for field in ("allocation", "request"):
        table = data[field]
        if not isinstance(table, Mapping):
            raise DeadlockInputError(f"{field} must be an object mapping process to vector")
        tables[field] = {
            _node(p, f"a process name in {field}"): _count_vector(v, width, f"{field}[{p}]")
            for p, v in table.items()
        }
    allocation, req = tables["allocation"], tables["request"]
    if set(allocation) != set(req):
        odd = sorted(set(allocation) ^ set(req))
        raise DeadlockInputError(f"allocation and request list different processes: {odd}")
    return available, allocation, req


def _detect(
    available: Sequence[int],
    allocation: Mapping[str, Sequence[int]],
    request: Mapping[str, Sequence[int]],
) -> tuple[list[str], list[str]]:
    """§8.7.2: ``(finish order, deadlocked)``. Holders of nothing finish trivially."""
    work = list(available)
    pending = [p for p in allocation if any(allocation[p])]
    order = [p for p in allocation if not any(allocation[p])]
    progressed = True
    while pending and progressed:
        progressed = False
        for p in list(pending):
            if all(r <= w for r, w in zip(request[p], work, strict=True)):
                work = [w + a for w, a in zip(work, allocation[p], strict=True)]
                order.append(p)
                pending.remove(p)
                progressed = True
    return order, sorted(pending)


def detect_matrix(data: Mapping[str, Any]) -> list[str]:
    """Deadlocked processes (sorted) per the §8.7.2 detection algorithm."""
    if not isinstance(data, Mapping):
        raise DeadlockInputError("the matrix input must be a JSON object")
    return _detect(*_matrix(data))[1]


def check(graph_json: Mapping[str, Any]) -> dict[str, Any]:
    """Detect deadlock in either JSON form (see the module docstring for the output)."""
    if not isinstance(graph_json, Mapping):
        raise DeadlockInputError("the input must be a JSON object")
    keys = set(graph_json)
    if "edges" in keys:
        unknown = keys - _GRAPH_KEYS
        if unknown:
            raise DeadlockInputError(f"unknown field(s) in graph form: {sorted(unknown)}")
        edges = _edges(graph_json["edges"])
        if "nodes" in graph_json:  # isolated nodes are allowed but just validated
            nodes = graph_json["nodes"]
            if not isinstance(nodes, list):
                raise DeadlockInputError("nodes must be a list of names")
            for i, n in enumerate(nodes):
                _node(n, f"nodes[{i}]")
        return {"deadlocked": deadlocked(edges), "cycles": find_cycles(edges)}
    if keys & {"available", "allocation", "request"}:
        unknown = keys - _MATRIX_KEYS
        if unknown:
            raise DeadlockInputError(f"unknown field(s) in matrix form: {sorted(unknown)}")
        order, stuck = _detect(*_matrix(graph_json))
        return {"deadlocked": stuck, "finish_order": order}
    raise DeadlockInputError(
        "expected either {'edges': [[waiter, holder], ...]} or "
        "{'available': [...], 'allocation': {...}, 'request': {...}}"
    )
