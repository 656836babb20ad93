"""What the scheduler tracks about a task (:class:`Job`), what it reports when the task
ends (:class:`JobResult`), and the hooks the kernel service plugs into it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Literal, Protocol

from peeros.compute.workers import Execution, TaskOutcome, TaskSpec
from peeros.eager import EagerFuture, eager_future
from peeros.kernel.scheduling import Task

Status = Literal["DONE", "FAILED", "TIMED_OUT", "CANCELLED"]


@dataclass
class Job:
    """A task as the scheduler tracks it."""

    task_id: str
    spec: TaskSpec
    priority: int = 0
    timeout: float = 60.0
    expected: float | None = None  # declared run time (SJF); None = learn it
    burst_key: str = ""  # what SJF learns run times by (program + function)
    order: int = 0
    submitted: float = 0.0
    enqueued: float = 0.0
    ticket: int = 0
    execution: Execution | None = None
    used: float = 0.0
    stint_start: float | None = None
    stint: int = 0
    slot: int | None = None
    first_start: float | None = None
    kill_status: Status | None = None
    timer: asyncio.TimerHandle | None = None
    qtimer: asyncio.TimerHandle | None = None
    name: str = ""
    #: The parent process (a task that spawned this one) and the process group.
    parent: str | None = None
    group: str | None = None
    #: Banker's: maximum claim and what to hold from dispatch on; memory to reserve (MB).
    claims: dict[str, int] = field(default_factory=dict)
    holds: dict[str, int] = field(default_factory=dict)
    memory_mb: int | None = None
    admitted: bool = False
    held_reason: str | None = None
    #: In a blocking system call (WAITING): no slot, not in the ready queue.
    blocked: bool = False
    waiting_on: str | None = None
    #: Set when a woken job is dispatched again: its system call may return.
    wake: asyncio.Future[None] | None = None
    #: Bumped whenever the job enters or leaves the ready queue (stale heap entries).
    generation: int = 0
    #: Jobs already handed to this job's worker, to run after it (pipelining), and the
    #: job a queued job waits behind.
    queued: list[Job] = field(default_factory=list)
    behind: Job | None = None
    #: Its result; listeners hear of it the moment it is set (a reply goes out first).
    future: EagerFuture[JobResult] = field(default_factory=eager_future)


class Hooks(Protocol):
    """What the kernel service does at the scheduler's state changes (process table,
    Banker's algorithm, memory allocator). ``admit`` returns why a job must wait, or None."""

    def on_state(self, job: Job, state: str) -> None: ...

    def admit(self, job: Job) -> str | None: ...

    def on_finish(self, job: Job, status: str) -> None: ...


@dataclass(frozen=True)
class JobResult:
    task_id: str
    status: Status
    outcome: TaskOutcome | None
    execution_time: float
    waiting_time: float
    turnaround_time: float
    started_at: float | None
    finished_at: float
    error: str | None = None

    @classmethod
    def of(
        cls,
        job: Job,
        status: Status,
        outcome: TaskOutcome | None,
        error: str | None,
        now: float,
        wall_offset: float,
    ) -> JobResult:
        """The result of ``job`` ending at ``now`` (the scheduler's clock; ``wall_offset``
        turns it into wall-clock time)."""
        turnaround = now - job.submitted
        return cls(
            task_id=job.task_id,
            status=status,
            outcome=outcome,
            execution_time=job.used,
            waiting_time=max(turnaround - job.used, 0.0),
            turnaround_time=turnaround,
            started_at=job.first_start + wall_offset if job.first_start is not None else None,
            finished_at=now + wall_offset,
            error=error,
        )


def policy_view(job: Job, learned: float) -> Task:
    """The job as the policies see it; ``learned``: its expected run time if it declared
    none (SJF's exponential average for its program + function)."""
    expected = job.expected if job.expected is not None else learned
    return Task(
        name=job.task_id,
        arrival=job.submitted,
        remaining=max(expected - job.used, 0.0),
        priority=job.priority,
        order=job.order,
        enqueued=job.enqueued,
        ticket=job.ticket,
    )
