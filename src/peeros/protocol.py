"""Every request and response body on the wire, as pydantic models, in one module.

Both planes speak JSON bodies described here (file bodies, later, are raw bytes).
Routes and clients never build dicts by hand: they validate into and dump out of these
models, so a malformed body fails in one place with a message that names the field.

``PROTOCOL_VERSION`` travels in the ``PeerOS-Protocol`` header of every request; a
server refuses a different major version with a clear error.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

PROTOCOL_VERSION = 1
PROTOCOL_HEADER = "PeerOS-Protocol"

PeerId = Annotated[str, StringConstraints(pattern=r"^[a-z2-7]{26}$")]
#: ``host:port`` as nodes advertise themselves.
Address = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.\-\[\]:]{1,255}:\d{1,5}$")]


class Model(BaseModel):
    """Base of every wire model: unknown fields are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorDetail(Model):
    code: str
    message: str


class ErrorBody(Model):
    error: ErrorDetail


# --- enrollment -----------------------------------------------------------------------


class CAResponse(Model):
    """The cluster CA certificate (PEM); the joining peer checks it against its token."""

    ca_pem: str


class EnrollRequest(Model):
    #: The secret half of the join token.
    secret: str = Field(min_length=1, max_length=256)
    #: A PEM certificate signing request for the peer's own key.
    csr_pem: str = Field(min_length=1, max_length=16_384)


class EnrollResponse(Model):
    peer_id: PeerId
    certificate_pem: str
    ca_pem: str


# --- membership -----------------------------------------------------------------------


class Load(Model):
    """What a peer reports about itself in every heartbeat."""

    queued: int = Field(default=0, ge=0)
    running: int = Field(default=0, ge=0)
    slots: int = Field(default=1, ge=1, le=4096)
    cpu_percent: float = Field(default=0.0, ge=0.0, le=100.0 * 4096)
    mem_free: int = Field(default=0, ge=0)
    disk_free: int = Field(default=0, ge=0)


class Heartbeat(Model):
    """Registration and heartbeat are one message: a tracker that lost a peer relearns it."""

    address: Address
    api_url: str | None = Field(default=None, max_length=512)
    load: Load
    version: str = Field(default="", max_length=64)


class HeartbeatAck(Model):
    peer_id: PeerId
    #: The tracker's idea of when this peer should next report, in seconds.
    interval_hint: float | None = None


class PeerInfo(Model):
    peer_id: PeerId
    address: Address
    api_url: str | None = None
    alive: bool
    state: Literal["alive", "dead", "left"]
    load: Load
    last_heartbeat: float
    registered_at: float
    version: str = ""


class PeerList(Model):
    peers: list[PeerInfo]
    #: True when the answer came from a peer's cached member list (tracker unreachable).
    stale: bool = False


# --- placement ------------------------------------------------------------------------


class PlacementRequest(Model):
    #: Worker slots each task needs.
    cpu: int = Field(default=1, ge=1, le=4096)
    #: How many tasks to place (a batch is placed in one request).
    count: int = Field(default=1, ge=1, le=100_000)
    #: Peers that must not be chosen (e.g. one that just failed this task).
    exclude: list[PeerId] = Field(default_factory=list, max_length=1024)


class Placement(Model):
    peer_id: PeerId
    address: Address


class Placements(Model):
    #: One entry per task, in request order.
    placements: list[Placement]


# --- status ---------------------------------------------------------------------------


class TrackerStatus(Model):
    role: Literal["tracker"] = "tracker"
    version: str
    address: str
    ca_fingerprint: str
    peers_alive: int
    peers_total: int
    uptime: float
    schema_version: int
    placements_served: int = 0


class PeerStatus(Model):
    role: Literal["peer"] = "peer"
    version: str
    peer_id: PeerId
    address: str
    api_url: str
    data_dir: str
    tracker: str | None
    tracker_reachable: bool
    last_heartbeat_ok: float | None
    load: Load
    uptime: float
    known_peers: int
    #: True when tasks run in bubblewrap sandboxes (else rlimits only).
    sandboxed: bool = False
    policy: str = "fcfs"


# --- CPU sharing ----------------------------------------------------------------------

TaskStatus = Literal["QUEUED", "RUNNING", "DONE", "FAILED", "TIMED_OUT", "CANCELLED"]
TaskId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
MAX_PROGRAM_CHARS = 1 << 20
MAX_PAYLOAD_B64 = 16 << 20
MAX_BATCH = 100_000


class TaskOptions(Model):
    """How a task runs; shared by single submissions and batches."""

    confidential: bool = False
    priority: int = Field(default=0, ge=-1000, le=1000)
    max_retries: int = Field(default=0, ge=0, le=10)
    timeout: float = Field(default=60.0, gt=0, le=7 * 24 * 3600)
    cache: bool = False
    memory_mb: int | None = Field(default=None, ge=1, le=1 << 20)
    #: Declared run time in seconds, for SJF (else learned from history).
    expected_time: float | None = Field(default=None, gt=0)


class TaskRequest(TaskOptions):
    """A program task (source + function + JSON args) or a pickled callable (``payload``)."""

    program: str | None = Field(default=None, max_length=MAX_PROGRAM_CHARS)
    function: str | None = Field(default=None, max_length=256)
    args: list[Any] = Field(default_factory=list)
    #: base64 of cloudpickle((fn, args, kwargs)); unpickled only inside the sandbox.
    payload: str | None = Field(default=None, max_length=MAX_PAYLOAD_B64)


class BatchRequest(Model):
    tasks: list[TaskRequest] = Field(min_length=1, max_length=MAX_BATCH)


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
    queue: list[dict[str, Any]]
    running: list[dict[str, Any]]
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
