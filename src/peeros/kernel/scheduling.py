"""CPU scheduling policies: pure decisions shared by the live scheduler and the simulator.

Source: Silberschatz, Galvin, Gagne, *Operating System Concepts*, 10th ed., §5.3
("Scheduling Algorithms": FCFS, SJF and its preemptive form shortest-remaining-time-first,
round robin, priority scheduling with aging) and §5.3.2 (exponential averaging of the
next CPU burst).

A policy never reads a clock, touches a process or sleeps. The caller hands it the ready
queue as :class:`Task` snapshots plus the current time, and it answers two questions:

* :meth:`Policy.select` -- which ready task to dispatch next (``None`` if none);
* :meth:`Policy.should_preempt` -- whether a ready candidate should displace the running
  task right now (only preemptive policies ever say yes).

Round robin additionally exposes :attr:`Policy.quantum`: the caller preempts the running
task when a slice of that length expires and another task is ready.

Conventions (the textbook's):

* ties go to the earlier ``arrival``, then to the earlier input ``order``;
* a preemptive policy preempts only when the candidate is *strictly* better;
* round robin serves the queue in order of ``(enqueued, ticket)``. The caller stamps a
  task with the time and a monotonically increasing ticket each time it enters the
  queue, admitting new arrivals before re-queueing a preempted task, so a job that
  arrives at the instant a quantum expires is queued *before* the preempted job;
* ``priority_order="high-first"``: a larger number runs first; ``"low-first"``: a smaller
  number runs first (Silberschatz's convention);
* aging: a task's effective priority improves by ``aging`` per time unit elapsed since its
  ``enqueued`` stamp, so low priorities cannot starve. The default ``0.0`` gives the
  textbook answers.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Final, TypeAlias

__all__ = [
    "POLICY_NAMES",
    "PRIORITY_ORDERS",
    "FCFSPolicy",
    "Policy",
    "PriorityPolicy",
    "RoundRobinPolicy",
    "SJFPolicy",
    "SchedulingError",
    "Task",
    "Time",
    "exponential_average",
    "make_policy",
]

Time: TypeAlias = int | float | Fraction
"""A point or span of time in caller-chosen units (the simulator uses exact fractions)."""

SortKey: TypeAlias = tuple[Time, ...]

POLICY_NAMES: Final = ("fcfs", "sjf", "srtf", "priority", "priority-preemptive", "rr")
PRIORITY_ORDERS: Final = ("high-first", "low-first")


class SchedulingError(ValueError):
    """A scheduling request is invalid; the message names the offending field or job."""


def _check_number(value: object, what: str, *, positive: bool = False) -> int | float:
    """Return ``value`` if it is a finite, non-negative (or positive) int or float."""
    # bool is an int subclass, but ``"burst": true`` is a mistake, not a number.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SchedulingError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise SchedulingError(f"{what} must be finite, got {value!r}")
    if positive and value <= 0:
        raise SchedulingError(f"{what} must be > 0, got {value!r}")
    if value < 0:
        raise SchedulingError(f"{what} must be >= 0, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Task:
    """What a policy may know about one ready (or running) task.

    ``remaining`` is the expected remaining CPU time: the declared or learned burst for a
    task that has not run, less what it has run since. ``order`` is the input order (the
    final tie-breaker); ``enqueued``/``ticket`` record when the task last entered the
    ready queue (``enqueued`` defaults to ``arrival``).
    """

    name: str
    arrival: Time
    remaining: Time
    priority: Time = 0
    order: int = 0
    enqueued: Time | None = None
    ticket: int = 0

    @property
    def ready_since(self) -> Time:
        """When the task last entered the ready queue."""
        return self.arrival if self.enqueued is None else self.enqueued


class Policy(ABC):
    """A scheduling policy: orders ready tasks; smaller :meth:`key` runs first."""

    name: str = ""
    preemptive: bool = False
    quantum: Time | None = None

    @abstractmethod
    def key(self, task: Task, now: Time) -> SortKey:
        """Sort key of ``task`` at time ``now``; the smallest key is dispatched next."""

    def static_key(self, task: Task) -> SortKey:
        """A key that orders ready tasks exactly as :meth:`key` does at any ``now`` at or
        after every task's ``ready_since``, but does not depend on ``now``: a live
        scheduler can keep its queue in a heap instead of rescanning it per decision."""
        return self.key(task, 0)

    def select(self, ready: Iterable[Task], now: Time) -> Task | None:
        """The task to dispatch next from ``ready``, or ``None`` if it is empty."""
        return min(ready, key=lambda task: self.key(task, now), default=None)

    def should_preempt(self, running: Task, candidate: Task, now: Time) -> bool:
        """Whether ``candidate`` should displace ``running`` at ``now`` (strictly better)."""
        return False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class FCFSPolicy(Policy):
    """First come, first served (§5.3.1): by arrival, never preempts."""

    name = "fcfs"

    def key(self, task: Task, now: Time) -> SortKey:
        return (task.arrival, task.order)


class SJFPolicy(Policy):
    """Shortest job first (§5.3.2); with ``preemptive`` it is shortest-remaining-time-first.

    The burst is whatever the caller puts in ``Task.remaining``: declared, or learned with
    :func:`exponential_average`.
    """

    def __init__(self, *, preemptive: bool = False) -> None:
        self.preemptive = preemptive
        self.name = "srtf" if preemptive else "sjf"

    def key(self, task: Task, now: Time) -> SortKey:
        return (task.remaining, task.arrival, task.order)

    def should_preempt(self, running: Task, candidate: Task, now: Time) -> bool:
        return self.preemptive and candidate.remaining < running.remaining


class PriorityPolicy(Policy):
    """Priority scheduling (§5.3.4), optionally preemptive, with optional aging.

    The effective priority of a task is its base priority improved by ``aging`` per time
    unit since ``Task.enqueued``; the running task is judged by the same formula, so it
    keeps the boost that won it the CPU. Because aging is linear, how two tasks compare
    depends only on their base priorities and enqueue stamps, never on ``now``: decisions
    change only when tasks enter or leave the queue, which keeps event-driven simulation
    exact.
    """

    def __init__(
        self,
        *,
        preemptive: bool = False,
        priority_order: str = "high-first",
        aging: float = 0.0,
    ) -> None:
        if priority_order not in PRIORITY_ORDERS:
            raise SchedulingError(
                f"unknown priority_order {priority_order!r}; expected one of {PRIORITY_ORDERS}"
            )
        self.preemptive = preemptive
        self.name = "priority-preemptive" if preemptive else "priority"
        self.high_first = priority_order == "high-first"
        self.aging = float(_check_number(aging, "aging"))

    def effective_priority(self, task: Task, now: Time) -> Time:
        """Base priority moved towards "runs first" by aging (exact when aging is 0)."""
        if not self.aging:
            return task.priority
        boost = self.aging * max(now - task.ready_since, 0)
        return task.priority + boost if self.high_first else task.priority - boost

    def _rank(self, task: Task, now: Time) -> Time:
        """Smaller rank runs first, whatever the priority order."""
        priority = self.effective_priority(task, now)
        return -priority if self.high_first else priority

    def key(self, task: Task, now: Time) -> SortKey:
        return (self._rank(task, now), task.arrival, task.order)

    def static_key(self, task: Task) -> SortKey:
        # rank(now) = static + (aging * now, the same for every task): drop the common term.
        if self.high_first:
            rank = self.aging * task.ready_since - task.priority
        else:
            rank = task.priority + self.aging * task.ready_since
        return (rank, task.arrival, task.order)

    def should_preempt(self, running: Task, candidate: Task, now: Time) -> bool:
        return self.preemptive and self._rank(candidate, now) < self._rank(running, now)


class RoundRobinPolicy(Policy):
    """Round robin (§5.3.3): FIFO by queue entry; the caller preempts on quantum expiry."""

    name = "rr"

    def __init__(self, quantum: int | float) -> None:
        self.quantum = _check_number(quantum, "quantum", positive=True)

    def key(self, task: Task, now: Time) -> SortKey:
        return (task.ready_since, task.ticket, task.arrival, task.order)


def make_policy(
    name: str,
    quantum: int | float | None = None,
    priority_order: str = "high-first",
    aging: float = 0.0,
) -> Policy:
    """Build the policy called ``name`` (one of :data:`POLICY_NAMES`).

    ``quantum`` is required by ``"rr"`` and ignored otherwise; ``priority_order`` and
    ``aging`` apply to the two priority policies and are ignored by the others, so a live
    scheduler can switch policy without rewriting its settings.
    Raises :class:`SchedulingError` naming the unknown policy or bad parameter.
    """
    if name == "fcfs":
        return FCFSPolicy()
    if name in ("sjf", "srtf"):
        return SJFPolicy(preemptive=name == "srtf")
    if name in ("priority", "priority-preemptive"):
        return PriorityPolicy(
            preemptive=name == "priority-preemptive", priority_order=priority_order, aging=aging
        )
    if name == "rr":
        if quantum is None:
            raise SchedulingError("policy 'rr' requires a quantum > 0")
        return RoundRobinPolicy(quantum)
    raise SchedulingError(f"unknown policy {name!r}; expected one of {POLICY_NAMES}")


def exponential_average(predicted: float, actual: float, alpha: float = 0.5) -> float:
    """Predict the next CPU burst: ``alpha * actual + (1 - alpha) * predicted`` (§5.3.2).

    This is how SJF learns an expected run time from the bursts a task has shown so far.
    """
    if not 0.0 <= alpha <= 1.0:
        raise SchedulingError(f"alpha must be within [0, 1], got {alpha!r}")
    return alpha * actual + (1.0 - alpha) * predicted
