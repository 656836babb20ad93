"""Deterministic CPU-scheduling simulator driving the policies of :mod:`.scheduling`.

Checks textbook exercises (Silberschatz, Galvin, Gagne, *Operating System Concepts*,
10th ed., §5.3) with exactly the policy code the live scheduler runs. Spec format::

    {"policy": "fcfs|sjf|srtf|priority|priority-preemptive|rr", "quantum": 4,
     "priority_order": "high-first|low-first", "aging": 0.0,
     "jobs": [{"name": "P1", "arrival": 0, "burst": 24, "priority": 3}]}

``quantum`` is required by ``rr`` only, ``priority`` by the priority policies only
(default 0 elsewhere); ``priority_order`` defaults to ``"high-first"`` and ``aging`` to 0.

Conventions (the textbook's, see :mod:`.scheduling`): ties go to the earlier arrival, then
input order; preemption only when strictly better; in round robin a job arriving at the
instant a quantum expires is queued before the preempted job; waiting = turnaround -
burst; response = first start - arrival; throughput = jobs / makespan with makespan =
last finish - first arrival. The Gantt chart starts at the first arrival, shows idle gaps
as ``None`` and merges consecutive slices of the same job.

Time is simulated exactly with :class:`fractions.Fraction` (no float drift, exact ties),
reading a float as the decimal it prints as (``0.1`` is 1/10); results are ints where
integral, floats otherwise. Decisions are taken at events
(arrival, completion, quantum expiry); that is exact even with aging, whose linear boost
never reorders two queued tasks between events.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from itertools import count
from typing import TypeAlias

from peeros.kernel.scheduling import (
    POLICY_NAMES,
    PRIORITY_ORDERS,
    Policy,
    SchedulingError,
    Task,
    _check_number,
    make_policy,
)

__all__ = ["JobResult", "JobSpec", "SimulationResult", "SimulationSpec", "simulate"]

Number: TypeAlias = int | float
GanttSlice: TypeAlias = tuple[str | None, Number, Number]

_SPEC_KEYS = frozenset({"policy", "quantum", "priority_order", "aging", "jobs"})
_JOB_KEYS = frozenset({"name", "arrival", "burst", "priority"})
_PRIORITY_POLICIES = frozenset({"priority", "priority-preemptive"})


def _check_keys(data: Mapping[str, object], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(str(key) for key in data if key not in allowed)
    if unknown:
        raise SchedulingError(f"{where}: unknown field(s) {unknown}; allowed: {sorted(allowed)}")


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job to simulate; validated on construction."""

    name: str
    arrival: Number
    burst: Number
    priority: Number = 0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SchedulingError(f"job name must be a non-empty string, got {self.name!r}")
        where = f"job {self.name!r}"
        _check_number(self.arrival, f"{where}: arrival")
        _check_number(self.burst, f"{where}: burst", positive=True)
        _check_number(self.priority, f"{where}: priority")

    @classmethod
    def from_dict(cls, data: object, index: int, *, need_priority: bool = False) -> JobSpec:
        """Parse ``jobs[index]``; ``priority`` is required when ``need_priority``."""
        where = f"jobs[{index}]"
        if not isinstance(data, Mapping):
            raise SchedulingError(f"{where} must be an object, got {data!r}")
        if "name" in data:
            where = f"{where} ({data['name']!r})"
        _check_keys(data, _JOB_KEYS, where)
        required = _JOB_KEYS if need_priority else _JOB_KEYS - {"priority"}
        missing = sorted(key for key in required if key not in data)
        if missing:
            raise SchedulingError(f"{where}: missing field(s) {missing}")
        if not isinstance(data["name"], str) or not data["name"]:
            raise SchedulingError(f"{where}: name must be a non-empty string")
        return cls(data["name"], data["arrival"], data["burst"], data.get("priority", 0))


@dataclass(frozen=True, slots=True)
class SimulationSpec:
    """A validated simulation request; build it with :meth:`from_dict` or directly."""

    policy: str
    jobs: tuple[JobSpec, ...]
    quantum: Number | None = None
    priority_order: str = "high-first"
    aging: float = 0.0

    def __post_init__(self) -> None:
        self.make_policy()  # validates policy, quantum, priority_order and aging
        if not self.jobs:
            raise SchedulingError("jobs must be a non-empty list")
        seen: set[str] = set()
        for job in self.jobs:
            if job.name in seen:
                raise SchedulingError(f"duplicate job name {job.name!r}")
            seen.add(job.name)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> SimulationSpec:
        """Parse and validate a spec dict (see the module docstring for the format)."""
        if not isinstance(data, Mapping):
            raise SchedulingError(f"spec must be an object, got {data!r}")
        _check_keys(data, _SPEC_KEYS, "spec")
        policy = data.get("policy")
        if not isinstance(policy, str) or policy not in POLICY_NAMES:
            raise SchedulingError(f"unknown policy {policy!r}; expected one of {POLICY_NAMES}")
        order = data.get("priority_order", "high-first")
        if not isinstance(order, str) or order not in PRIORITY_ORDERS:
            raise SchedulingError(
                f"unknown priority_order {order!r}; expected one of {PRIORITY_ORDERS}"
            )
        # A quantum is meaningless outside round robin: ignored there.
        raw_quantum = data.get("quantum")
        quantum = _check_number(raw_quantum, "quantum", positive=True) if policy == "rr" else None
        aging = _check_number(data.get("aging", 0.0), "aging")
        raw_jobs = data.get("jobs")
        if not isinstance(raw_jobs, list | tuple) or not raw_jobs:
            raise SchedulingError(f"jobs must be a non-empty list, got {raw_jobs!r}")
        need_priority = policy in _PRIORITY_POLICIES
        jobs = tuple(
            JobSpec.from_dict(job, i, need_priority=need_priority) for i, job in enumerate(raw_jobs)
        )
        return cls(policy, jobs, quantum, order, float(aging))

    def make_policy(self) -> Policy:
        """The policy object this spec asks for."""
        return make_policy(self.policy, self.quantum, self.priority_order, self.aging)


@dataclass(frozen=True, slots=True)
class JobResult:
    """Per-job outcome; all times in the spec's units."""

    name: str
    arrival: Number
    burst: Number
    priority: Number
    start: Number
    finish: Number
    waiting: Number
    turnaround: Number
    response: Number

    def to_dict(self) -> dict[str, str | Number]:
        return {
            "name": self.name,
            "arrival": self.arrival,
            "burst": self.burst,
            "priority": self.priority,
            "start": self.start,
            "finish": self.finish,
            "waiting": self.waiting,
            "turnaround": self.turnaround,
            "response": self.response,
        }


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """Outcome of :func:`simulate`; jobs are listed in input order."""

    policy: str
    jobs: tuple[JobResult, ...]
    gantt: tuple[GanttSlice, ...]
    avg_waiting: float
    avg_turnaround: float
    avg_response: float
    throughput: float
    makespan: Number

    def job(self, name: str) -> JobResult:
        """The result for the job called ``name`` (``KeyError`` if there is none)."""
        for job in self.jobs:
            if job.name == name:
                return job
        raise KeyError(name)

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-serialisable form; Gantt slices become ``[name, start, end]`` lists."""
        return {
            "policy": self.policy,
            "jobs": [job.to_dict() for job in self.jobs],
            "avg_waiting": self.avg_waiting,
            "avg_turnaround": self.avg_turnaround,
            "avg_response": self.avg_response,
            "throughput": self.throughput,
            "makespan": self.makespan,
            "gantt": [list(piece) for piece in self.gantt],
        }


def _exact(value: Number) -> Fraction:
    """A spec number as an exact fraction; a float is read as the decimal it prints as.

    ``0.3`` means 3/10, as the user typed it, not the binary double just below it --
    otherwise a 0.3 quantum would leave a 1e-17 sliver of a 1-unit burst.
    """
    return Fraction(repr(value)) if isinstance(value, float) else Fraction(value)


def _out(value: Fraction) -> Number:
    """An exact simulated time as an int when integral, else a float."""
    return int(value) if value.denominator == 1 else float(value)


@dataclass
class _Run:
    """Mutable state of one simulation; every time below is an exact ``Fraction``."""

    policy: Policy
    jobs: tuple[JobSpec, ...]
    quantum: Fraction | None
    pending: deque[tuple[Fraction, Task]] = field(default_factory=deque)
    ready: list[Task] = field(default_factory=list)
    left: dict[str, Fraction] = field(default_factory=dict)
    first_start: dict[str, Fraction] = field(default_factory=dict)
    finish: dict[str, Fraction] = field(default_factory=dict)
    gantt: list[tuple[str | None, Fraction, Fraction]] = field(default_factory=list)
    tickets: count[int] = field(default_factory=count)

    def __post_init__(self) -> None:
        arrivals = sorted((_exact(job.arrival), order, job) for order, job in enumerate(self.jobs))
        for arrival, order, job in arrivals:
            self.left[job.name] = _exact(job.burst)
            task = Task(job.name, arrival, self.left[job.name], job.priority, order)
            self.pending.append((arrival, task))

    def admit(self, now: Fraction) -> None:
        """Queue every job that has arrived by ``now``, in (arrival, input) order."""
        while self.pending and self.pending[0][0] <= now:
            arrival, task = self.pending.popleft()
            self.ready.append(replace(task, enqueued=arrival, ticket=next(self.tickets)))

    def requeue(self, task: Task, now: Fraction) -> None:
        remaining = self.left[task.name]
        self.ready.append(
            replace(task, remaining=remaining, enqueued=now, ticket=next(self.tickets))
        )

    def dispatch(self, task: Task, now: Fraction) -> Task:
        self.ready.remove(task)
        self.first_start.setdefault(task.name, now)
        return task

    def record(self, name: str | None, start: Fraction, end: Fraction) -> None:
        if self.gantt and self.gantt[-1][0] == name and self.gantt[-1][2] == start:
            self.gantt[-1] = (name, self.gantt[-1][1], end)
        else:
            self.gantt.append((name, start, end))

    def run(self) -> None:
        now = self.pending[0][0]
        running: Task | None = None
        slice_start = now
        while self.pending or self.ready or running is not None:
            self.admit(now)
            if running is None:
                chosen = self.policy.select(self.ready, now)
                if chosen is None:  # nothing ready: idle until the next arrival
                    self.record(None, now, self.pending[0][0])
                    now = self.pending[0][0]
                    continue
                running, slice_start = self.dispatch(chosen, now), now
            # Run until the next event: completion, an arrival or quantum expiry.
            horizon = [now + self.left[running.name]]
            if self.pending:
                horizon.append(self.pending[0][0])
            if self.quantum is not None:
                horizon.append(slice_start + self.quantum)
            end = min(horizon)
            self.record(running.name, now, end)
            self.left[running.name] -= end - now
            running = replace(running, remaining=self.left[running.name])
            now = end
            self.admit(now)  # arrivals first: they queue ahead of a preempted job
            if not self.left[running.name]:
                self.finish[running.name] = now
                running = None
            elif self.quantum is not None and now == slice_start + self.quantum:
                if self.ready:
                    self.requeue(running, now)
                    running = None
                else:  # alone in the queue: it simply gets another quantum
                    slice_start = now
            elif self.policy.preemptive:
                candidate = self.policy.select(self.ready, now)
                if candidate is not None and self.policy.should_preempt(running, candidate, now):
                    self.requeue(running, now)
                    running, slice_start = self.dispatch(candidate, now), now


def simulate(spec: SimulationSpec | Mapping[str, object]) -> SimulationResult:
    """Run ``spec`` (a :class:`SimulationSpec` or its dict form) to completion.

    Raises :class:`~peeros.kernel.scheduling.SchedulingError` for an invalid spec.
    """
    if not isinstance(spec, SimulationSpec):
        spec = SimulationSpec.from_dict(spec)
    quantum = _exact(spec.quantum) if spec.policy == "rr" and spec.quantum else None
    state = _Run(spec.make_policy(), spec.jobs, quantum)
    state.run()

    results: list[JobResult] = []
    totals = {"waiting": Fraction(0), "turnaround": Fraction(0), "response": Fraction(0)}
    for job in spec.jobs:
        start, finish = state.first_start[job.name], state.finish[job.name]
        turnaround = finish - _exact(job.arrival)
        waiting = turnaround - _exact(job.burst)
        response = start - _exact(job.arrival)
        totals["waiting"] += waiting
        totals["turnaround"] += turnaround
        totals["response"] += response
        results.append(
            JobResult(
                job.name,
                job.arrival,
                job.burst,
                job.priority,
                _out(start),
                _out(finish),
                _out(waiting),
                _out(turnaround),
                _out(response),
            )
        )
    n = len(results)
    makespan = max(state.finish.values()) - min(_exact(job.arrival) for job in spec.jobs)
    return SimulationResult(
        policy=spec.policy,
        jobs=tuple(results),
        gantt=tuple((name, _out(start), _out(end)) for name, start, end in state.gantt),
        avg_waiting=round(float(totals["waiting"] / n), 4),
        avg_turnaround=round(float(totals["turnaround"] / n), 4),
        avg_response=round(float(totals["response"] / n), 4),
        throughput=round(float(n / makespan), 4),
        makespan=_out(makespan),
    )
