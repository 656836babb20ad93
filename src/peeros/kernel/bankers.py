"""Deadlock avoidance with Dijkstra's Banker's algorithm.

Source: A. Silberschatz, P. B. Galvin, G. Gagne, *Operating System Concepts*, 10th ed.,
§8.6.3 "Banker's Algorithm" (safety algorithm §8.6.3.1, resource-request algorithm
§8.6.3.2); E. W. Dijkstra, EWD-108 (1965).

Contract:

* A :class:`BankersState` is immutable: ``resources`` (names), ``available``,
  ``maximum`` and ``allocation`` per process; ``need = maximum - allocation``.
  :meth:`BankersState.from_dict` validates the JSON form (``"max"`` is the key for
  ``maximum``) and names the offending process and field in every error.
* :func:`is_safe` runs the safety algorithm. The sweep visits processes in declaration
  order, pass after pass, finishing every process whose need fits in ``work``; the
  returned sequence is therefore deterministic. When the state is unsafe the sequence
  holds the processes that *could* finish (the others cannot, whatever the order).
* :func:`request` runs the resource-request algorithm and never mutates its input:
  a request above the remaining need is refused ("exceeds its maximum claim"), one above
  ``available`` must wait ("not enough available"), one whose pretend-allocation is
  unsafe must wait ("would leave the system unsafe"); otherwise it is granted and the
  result carries the new state.
* :class:`Banker` is the mutable, live-use wrapper: declare, request, release, finish.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from peeros.errors import BadRequest

__all__ = [
    "Banker",
    "BankersError",
    "BankersState",
    "RequestResult",
    "is_safe",
    "request",
    "to_report",
]

Vector = tuple[int, ...]
_FIELDS = frozenset({"resources", "available", "max", "allocation"})


class BankersError(BadRequest, ValueError):
    """Malformed Banker's input; the message names the process and field at fault."""


def _fmt(vector: Iterable[int]) -> str:
    return "[" + ", ".join(str(v) for v in vector) + "]"


def _leq(a: Sequence[int], b: Sequence[int]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True))


def _add(a: Sequence[int], b: Sequence[int]) -> Vector:
    return tuple(x + y for x, y in zip(a, b, strict=True))


def _sub(a: Sequence[int], b: Sequence[int]) -> Vector:
    return tuple(x - y for x, y in zip(a, b, strict=True))


def _vector(value: object, resources: Sequence[str], where: str) -> Vector:
    """Parse a list of counts, or a ``{resource: count}`` object (missing names are 0)."""
    if isinstance(value, Mapping):
        for key in value:
            if key not in resources:
                raise BankersError(f"{where} names unknown resource {key!r}")
        items = [value.get(r, 0) for r in resources]
    elif isinstance(value, list | tuple):
        if len(value) != len(resources):
            raise BankersError(
                f"{where} has {len(value)} entries but there are {len(resources)} resources"
            )
        items = list(value)
    else:
        raise BankersError(f"{where} must be a list of counts, got {type(value).__name__}")
    for name, count in zip(resources, items, strict=True):
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise BankersError(f"{where}[{name}] must be a non-negative integer, got {count!r}")
    return tuple(items)


def _name(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise BankersError(f"{where} must be a non-empty string, got {value!r}")
    return value


@dataclass(frozen=True)
class BankersState:
    """An immutable Banker's state. Build it with :meth:`from_dict` to get validation."""

    resources: tuple[str, ...]
    available: Vector
    maximum: Mapping[str, Vector]
    allocation: Mapping[str, Vector]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BankersState:
        """Validate the JSON form; ``resources`` defaults to ``R0, R1, ...``."""
        if not isinstance(data, Mapping):
            raise BankersError("the Banker's state must be a JSON object")
        for key in data:
            if key not in _FIELDS:
                raise BankersError(f"unknown field {key!r} (expected {sorted(_FIELDS)})")
        for key in ("available", "max", "allocation"):
            if key not in data:
                raise BankersError(f"missing field {key!r}")
        raw_available = data["available"]
        if "resources" in data:
            raw = data["resources"]
            if not isinstance(raw, list | tuple) or not raw:
                raise BankersError("resources must be a non-empty list of names")
            resources = tuple(_name(r, "resources entry") for r in raw)
            if len(set(resources)) != len(resources):
                raise BankersError(f"resources has a duplicate name: {list(resources)}")
        elif isinstance(raw_available, list | tuple) and raw_available:
            resources = tuple(f"R{i}" for i in range(len(raw_available)))
        else:
            raise BankersError("available must be a non-empty list of counts")
        available = _vector(raw_available, resources, "available")
        tables: dict[str, dict[str, Vector]] = {}
        for field in ("max", "allocation"):
            table = data[field]
            if not isinstance(table, Mapping):
                raise BankersError(f"{field} must be an object mapping process to vector")
            tables[field] = {
                _name(p, f"a process name in {field}"): _vector(v, resources, f"{field}[{p}]")
                for p, v in table.items()
            }
        return cls.build(resources, available, tables["max"], tables["allocation"])

    @classmethod
    def build(
        cls,
        resources: Sequence[str],
        available: Sequence[int],
        maximum: Mapping[str, Sequence[int]],
        allocation: Mapping[str, Sequence[int]],
    ) -> BankersState:
        """Check the cross-field invariants and freeze. Vectors must already be parsed."""
        for p in maximum:
            if p not in allocation:
                raise BankersError(f"process {p!r} appears in max but not in allocation")
        for p in allocation:
            if p not in maximum:
                raise BankersError(f"process {p!r} appears in allocation but not in max")
        for p, alloc in allocation.items():
            for r, a, m in zip(resources, alloc, maximum[p], strict=True):
                if a > m:
                    raise BankersError(
                        f"allocation[{p}][{r}] = {a} exceeds its max[{p}][{r}] = {m}"
                    )
        return cls(
            resources=tuple(resources),
            available=tuple(available),
            maximum=MappingProxyType({p: tuple(v) for p, v in maximum.items()}),
            allocation=MappingProxyType({p: tuple(allocation[p]) for p in maximum}),
        )

    @property
    def processes(self) -> tuple[str, ...]:
        """Process names in declaration order (the order the safety sweep visits)."""
        return tuple(self.maximum)

    def need(self, process: str) -> Vector:
        """Remaining claim: ``max - allocation`` (§8.6.3, the *Need* matrix)."""
        return _sub(self.maximum[process], self.allocation[process])

    def total(self) -> Vector:
        """Every instance in the system: available plus everything allocated."""
        total = self.available
        for alloc in self.allocation.values():
            total = _add(total, alloc)
        return total

    def vector(self, value: object, where: str = "request") -> Vector:
        """Parse a vector (list or ``{resource: count}``) against this state's resources."""
        return _vector(value, self.resources, where)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form accepted by :meth:`from_dict`."""
        return {
            "resources": list(self.resources),
            "available": list(self.available),
            "max": {p: list(v) for p, v in self.maximum.items()},
            "allocation": {p: list(v) for p, v in self.allocation.items()},
        }


@dataclass(frozen=True)
class RequestResult:
    """The decision on one request.

    ``safe``/``sequence`` describe the state the decision looked at: the new state when
    granted, the pretend-allocation when refused as unsafe, the unchanged current state
    otherwise. ``wait`` is True when the process should block and retry later (not
    enough available, or unsafe); a request above the maximum claim is an error instead.
    """

    granted: bool
    safe: bool
    sequence: tuple[str, ...]
    reason: str
    new_state: BankersState | None
    wait: bool = False


def is_safe(state: BankersState) -> tuple[bool, tuple[str, ...]]:
    """Safety algorithm (§8.6.3.1): ``(True, a safe sequence)`` or ``(False, partial)``."""
    work = state.available
    pending = list(state.processes)
    sequence: list[str] = []
    progressed = True
    while pending and progressed:
        progressed = False
        for p in list(pending):
            if _leq(state.need(p), work):
                work = _add(work, state.allocation[p])
                sequence.append(p)
                pending.remove(p)
                progressed = True
    return (not pending, tuple(sequence))


def request(state: BankersState, process: str, vector: object) -> RequestResult:
    """Resource-request algorithm (§8.6.3.2) for ``process`` asking for ``vector``.

    Raises :class:`BankersError` for an unknown process or a malformed vector; every
    policy refusal is a :class:`RequestResult` with ``granted=False``.
    """
    if process not in state.maximum:
        raise BankersError(f"unknown process {process!r}")
    req = state.vector(vector, f"request of {process}")
    need = state.need(process)
    if not _leq(req, need):
        ok, seq = is_safe(state)
        reason = (
            f"{process} requested {_fmt(req)}, which exceeds its maximum claim "
            f"(remaining need {_fmt(need)})"
        )
        return RequestResult(False, ok, seq, reason, None)
    if not _leq(req, state.available):
        ok, seq = is_safe(state)
        reason = (
            f"not enough available: {process} requested {_fmt(req)} but only "
            f"{_fmt(state.available)} is available; it must wait"
        )
        return RequestResult(False, ok, seq, reason, None, wait=True)
    allocation = dict(state.allocation)
    allocation[process] = _add(allocation[process], req)
    pretend = BankersState(
        resources=state.resources,
        available=_sub(state.available, req),
        maximum=state.maximum,
        allocation=MappingProxyType(allocation),
    )
    ok, seq = is_safe(pretend)
    if not ok:
        stuck = [p for p in pretend.processes if p not in seq]
        reason = (
            f"granting {_fmt(req)} to {process} would leave the system unsafe "
            f"({', '.join(stuck)} could not finish); it must wait"
        )
        return RequestResult(False, False, seq, reason, None, wait=True)
    reason = f"granted {_fmt(req)} to {process}; safe sequence {', '.join(seq)}"
    return RequestResult(True, True, seq, reason, pretend)


def to_report(
    state: BankersState | Mapping[str, Any],
    process: str | None = None,
    vector: object = None,
) -> dict[str, Any]:
    """JSON report: ``{"safe", "sequence", "granted", "reason"}``.

    Without ``process`` it reports the state's safety and ``granted`` is None; with one,
    it reports the decision on ``vector`` (see :class:`RequestResult` for ``safe``).
    """
    if not isinstance(state, BankersState):
        state = BankersState.from_dict(state)
    if process is None:
        ok, seq = is_safe(state)
        if ok:
            reason = f"safe: the processes can finish in the order {', '.join(seq)}"
        else:
            stuck = [p for p in state.processes if p not in seq]
            reason = f"unsafe: {', '.join(stuck)} cannot be guaranteed to finish"
        return {"safe": ok, "sequence": list(seq), "granted": None, "reason": reason}
    result = request(state, process, vector)
    return {
        "safe": result.safe,
        "sequence": list(result.sequence),
        "granted": result.granted,
        "reason": result.reason,
    }


class Banker:
    """The live Banker: processes declare a maximum claim, then request and release.

    Every method either applies completely or raises :class:`BankersError` and changes
    nothing; :meth:`request` changes the state only when it grants.
    """

    def __init__(self, resources: Sequence[str], total: Sequence[int]) -> None:
        names = tuple(_name(r, "resources entry") for r in resources)
        if not names or len(set(names)) != len(names):
            raise BankersError("resources must be a non-empty list of distinct names")
        self._state = BankersState.build(names, _vector(list(total), names, "total"), {}, {})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Banker:
        """Resume from a :meth:`snapshot` (or any valid state)."""
        banker = cls.__new__(cls)
        banker._state = BankersState.from_dict(data)
        return banker

    @property
    def state(self) -> BankersState:
        return self._state

    def is_safe(self) -> tuple[bool, tuple[str, ...]]:
        return is_safe(self._state)

    def declare(self, process: str, max_vector: object) -> None:
        """Admit ``process`` with its maximum claim, which must fit the system's total."""
        s = self._state
        _name(process, "process")
        if process in s.maximum:
            raise BankersError(f"process {process!r} is already declared")
        claim = s.vector(max_vector, f"max[{process}]")
        total = s.total()
        if not _leq(claim, total):
            raise BankersError(
                f"max[{process}] = {_fmt(claim)} exceeds the system's total {_fmt(total)}"
            )
        self._replace({**s.maximum, process: claim}, {**s.allocation, process: (0,) * len(claim)})

    def request(self, process: str, vector: object) -> RequestResult:
        """Decide on the request; a grant is applied before returning."""
        result = request(self._state, process, vector)
        if result.new_state is not None:
            self._state = result.new_state
        return result

    def release(self, process: str, vector: object) -> None:
        """Give back part of what ``process`` holds."""
        s = self._state
        if process not in s.maximum:
            raise BankersError(f"unknown process {process!r}")
        rel = s.vector(vector, f"release of {process}")
        held = s.allocation[process]
        if not _leq(rel, held):
            raise BankersError(f"{process} releases {_fmt(rel)} but holds only {_fmt(held)}")
        self._replace(s.maximum, {**s.allocation, process: _sub(held, rel)}, _add(s.available, rel))

    def finish(self, process: str) -> None:
        """``process`` terminates: release everything it holds and forget its claim."""
        s = self._state
        if process not in s.maximum:
            raise BankersError(f"unknown process {process!r}")
        available = _add(s.available, s.allocation[process])
        maximum = {p: v for p, v in s.maximum.items() if p != process}
        allocation = {p: v for p, v in s.allocation.items() if p != process}
        self._replace(maximum, allocation, available)

    def snapshot(self) -> dict[str, Any]:
        """The JSON form of the current state (see :meth:`BankersState.to_dict`)."""
        return self._state.to_dict()

    def _replace(
        self,
        maximum: Mapping[str, Vector],
        allocation: Mapping[str, Vector],
        available: Vector | None = None,
    ) -> None:
        s = self._state
        self._state = BankersState.build(
            s.resources, s.available if available is None else available, maximum, allocation
        )
