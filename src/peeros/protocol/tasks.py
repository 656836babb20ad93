"""CPU sharing: tasks, batches, results, waits, the scheduler's state and history."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from peeros.protocol.base import Model

# --- CPU sharing ----------------------------------------------------------------------

TaskStatus = Literal["QUEUED", "RUNNING", "DONE", "FAILED", "TIMED_OUT", "CANCELLED"]
TaskId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
MAX_PROGRAM_CHARS = 1 << 20
MAX_PAYLOAD_B64 = 16 << 20
MAX_BATCH = 100_000


class TaskOptions(Model):
    """How a task runs; shared by single submissions and batches."""

    confidential: bool = False
    #: Run on another peer than the submitting one (the tracker places it, never here).
    elsewhere: bool = False
    priority: int = Field(default=0, ge=-1000, le=1000)
    max_retries: int = Field(default=0, ge=0, le=10)
    timeout: float = Field(default=60.0, gt=0, le=7 * 24 * 3600)
    cache: bool = False
    memory_mb: int | None = Field(default=None, ge=1, le=1 << 20)
    #: Declared run time in seconds, for SJF (else learned from history).
    expected_time: float | None = Field(default=None, gt=0)
    #: Banker's algorithm: the most of each resource the task may ever hold, and what it
    #: holds from dispatch on (more can be asked with ``peeros.task.request``).
    claims: dict[str, int] = Field(default_factory=dict, max_length=64)
    holds: dict[str, int] = Field(default_factory=dict, max_length=64)


class TaskRequest(TaskOptions):
    """A program task (source + function + JSON args) or a pickled callable (``payload``)."""

    program: str | None = Field(default=None, max_length=MAX_PROGRAM_CHARS)
    function: str | None = Field(default=None, max_length=256)
    args: list[Any] = Field(default_factory=list)
    #: base64 of cloudpickle((fn, args, kwargs)); unpickled only inside the sandbox.
    payload: str | None = Field(default=None, max_length=MAX_PAYLOAD_B64)


class BatchRequest(Model):
    tasks: list[TaskRequest] = Field(min_length=1, max_length=MAX_BATCH)


class LaneSubmit(BatchRequest):
    """``submit`` on the local lane: ``POST /v1/tasks/batch?wait=S`` as one frame."""

    #: Seconds to wait for every result before answering (0: at once, ids only).
    wait: float = Field(default=0.0, ge=0, le=60)


class TaskResult(Model):
    task_id: TaskId
    status: TaskStatus
    result: Any = None
    #: base64 of cloudpickle(result) for callable tasks.
    result_payload: str | None = None
    error: str | None = None
    traceback: str | None = None
    execution_time: float | None = None
    waiting_time: float | None = None
    turnaround_time: float | None = None
    peer_id: str | None = None
    origin: str | None = None
    attempts: int = 0
    cached: bool = False


class Submitted(Model):
    task_ids: list[TaskId]
    #: With ``?wait=S``: the results, when every task finished within S seconds.
    results: list[TaskResult] = Field(default_factory=list)


class WaitRequest(Model):
    task_ids: list[TaskId] = Field(min_length=1, max_length=MAX_BATCH)
    #: Seconds to wait at most; 0 answers at once.
    timeout: float = Field(default=30.0, ge=0, le=3600)
    #: Wait until all are finished (else: until at least one is).
    all: bool = False


class WaitResponse(Model):
    done: list[TaskResult]
    pending: list[TaskId]


class ExecuteRequest(Model):
    """Origin → executor: run these tasks here (the origin is read from the certificate)."""

    tasks: list[ExecuteItem] = Field(min_length=1, max_length=MAX_BATCH)


class ExecuteItem(TaskOptions):
    task_id: TaskId
    #: The parent process (a task that spawned this one) and its process group.
    parent: str | None = Field(default=None, max_length=64)
    group: str | None = Field(default=None, max_length=64)
    program: str | None = Field(default=None, max_length=MAX_PROGRAM_CHARS)
    function: str | None = Field(default=None, max_length=256)
    args: list[Any] = Field(default_factory=list)
    payload: str | None = Field(default=None, max_length=MAX_PAYLOAD_B64)


class ExecuteResponse(Model):
    results: list[TaskResult]


class CancelResponse(Model):
    task_id: TaskId
    cancelled: bool
    status: TaskStatus


class SchedPolicyRequest(Model):
    policy: str = Field(min_length=1, max_length=32)
    quantum_ms: float | None = Field(default=None, gt=0, le=60_000)
    aging: float | None = Field(default=None, ge=0, le=1000)


class SchedState(Model):
    policy: str
    quantum_ms: float
    aging: float
    slots: int
    #: Under FCFS, tasks handed to each busy worker ahead of time (0 = none).
    pipeline: int = 0
    queue: list[dict[str, Any]]
    running: list[dict[str, Any]]
    #: Tasks WAITING in a system call (a semaphore, a child, a resource grant).
    blocked: list[dict[str, Any]] = Field(default_factory=list)
    completed: int
    avg_waiting: float
    avg_turnaround: float
    throughput: float
    gantt: list[list[Any]]
    sandboxed: bool = False
    workers: dict[str, int] = Field(default_factory=dict)
    cache: dict[str, float] = Field(default_factory=dict)


class SimulateRequest(Model):
    spec: dict[str, Any]


class HistoryResponse(Model):
    tasks: list[dict[str, Any]]
    stats: dict[str, Any]


ExecuteRequest.model_rebuild()
