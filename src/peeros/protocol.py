"""Every request and response body on the wire, as pydantic models, in one module.

Both planes speak JSON bodies described here (file bodies, later, are raw bytes).
Routes and clients never build dicts by hand: they validate into and dump out of these
models, so a malformed body fails in one place with a message that names the field.

``PROTOCOL_VERSION`` travels in the ``PeerOS-Protocol`` header of every request; a
server refuses a different major version with a clear error.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

PROTOCOL_VERSION = 1
PROTOCOL_HEADER = "PeerOS-Protocol"

PEER_ID_RE = re.compile(r"^[a-z2-7]{26}$")
#: ``host:port`` as nodes advertise themselves.
ADDRESS_RE = re.compile(r"^[A-Za-z0-9.\-\[\]:]{1,255}:\d{1,5}$")
PeerId = Annotated[str, StringConstraints(pattern=PEER_ID_RE.pattern)]
Address = Annotated[str, StringConstraints(pattern=ADDRESS_RE.pattern)]


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
    #: Redis-protocol address of the memory store (127.0.0.1:PORT), or None when off.
    resp_address: str | None = None
    #: The store lives in memory only: its content is lost when the peer restarts.
    memory_store: str = "volatile: in memory, lost on restart"
    memory_keys: int = 0


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


# --- memory sharing -------------------------------------------------------------------

MemoryKey = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class MemoryTarget(Model):
    #: User plane only: a peer id or HOST:PORT whose store to use (default: this peer).
    on: str | None = Field(default=None, max_length=300)


class MemoryKeyRequest(MemoryTarget):
    key: MemoryKey


class MemorySetRequest(MemoryKeyRequest):
    value: Any = None
    ttl: float | None = Field(default=None, gt=0, le=10 * 365 * 86400)


class MemoryIncrRequest(MemoryKeyRequest):
    by: int = Field(default=1, ge=-(2**63), le=2**63 - 1)


class MemoryKeysRequest(MemoryTarget):
    pattern: str = Field(default="*", min_length=1, max_length=1024)


class MemoryEntry(Model):
    key: str
    value: Any = None
    #: Seconds left to live, or None when the key does not expire.
    ttl: float | None = None
    peer_id: str


class MemoryKeys(Model):
    keys: list[str]
    peer_id: str


class MemoryDeleted(Model):
    key: str
    deleted: bool
    peer_id: str


# --- files on a peer (bodies are raw bytes; these describe them) ----------------------

#: SHA-256 (hex) of a file body: sent with an upload, returned with a download.
SHA256_HEADER = "X-PeerOS-SHA256"
#: With a download: the file's modification time (epoch seconds) and the peer holding it.
MODIFIED_HEADER = "X-PeerOS-Modified"
PEER_HEADER = "X-PeerOS-Peer"


class FileInfo(Model):
    name: str
    size: int = Field(ge=0)
    sha256: str
    #: Modification time, seconds since the epoch.
    modified: float
    peer_id: str


class FileList(Model):
    files: list[FileInfo]
    peer_id: str


class FileDeleted(Model):
    name: str
    peer_id: str


# --- the kernel: processes, allocator, deadlock -----------------------------------------

Pid = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class ProcCreateRequest(Model):
    name: str = Field(min_length=1, max_length=200)
    parent: Pid | None = None
    group: Pid | None = None


class ProcKillRequest(Model):
    pid: Pid
    #: Kill the whole process group instead of the process and its descendants.
    group: bool = False


class PidsRequest(Model):
    pids: list[Pid] = Field(min_length=1, max_length=100_000)


class PidRequest(Model):
    pid: Pid


class AllocRequest(Model):
    name: str = Field(min_length=1, max_length=200)
    size: int = Field(gt=0, le=1 << 40)


class AllocFreeRequest(Model):
    name: str = Field(min_length=1, max_length=200)


class AllocPolicyRequest(Model):
    policy: str = Field(min_length=1, max_length=16)


class DeadlockResolveRequest(Model):
    victim: Pid


# --- IPC (semaphores and message queues hosted on a peer) -----------------------------

#: Names of semaphores and queues; ``"*"`` in a send means every queue on the peer.
IpcName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,128}$")]
#: Who waits, holds or sends: a task id, or ``client:<random>`` when the caller names none.
IpcParty = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,200}$")]
IPC_MAX_TIMEOUT = 3600.0


class IpcTarget(Model):
    #: User plane only: a peer id or HOST:PORT that hosts the object (default: this peer).
    on: str | None = Field(default=None, max_length=300)


class IpcListRequest(IpcTarget):
    pass


class IpcNameRequest(IpcTarget):
    name: IpcName


class IpcSignalRequest(IpcNameRequest):
    party: IpcParty | None = None


class IpcWaitRequest(IpcSignalRequest):
    #: Seconds to wait at most; 0 tries once.
    timeout: float = Field(default=30.0, ge=0, le=IPC_MAX_TIMEOUT)


class IpcSemCreateRequest(IpcNameRequest):
    value: int = Field(default=1, ge=0, le=2**31 - 1)
    binary: bool = False


class IpcQueueCreateRequest(IpcNameRequest):
    capacity: int = Field(default=10, ge=1, le=1_000_000)


class IpcSendRequest(IpcTarget):
    name: IpcName | Literal["*"]
    message: Any = None
    party: IpcParty | None = None
    timeout: float = Field(default=30.0, ge=0, le=IPC_MAX_TIMEOUT)


class IpcUndoRequest(IpcTarget):
    party: IpcParty


class IpcSemaphoreInfo(Model):
    name: str
    binary: bool
    initial: int
    value: int
    #: party → units it holds
    holders: dict[str, int]
    #: parties queued, first to be woken first
    waiters: list[str]
    peer_id: str


class IpcQueueInfo(Model):
    name: str
    capacity: int
    length: int
    #: parties waiting for a message (the queue is empty)
    receivers: list[str]
    #: parties waiting for room (the queue is full)
    senders: list[str]
    peer_id: str


class IpcList(Model):
    semaphores: list[IpcSemaphoreInfo]
    queues: list[IpcQueueInfo]
    peer_id: str


class IpcAcquired(Model):
    name: str
    party: str
    peer_id: str


class IpcSignalled(Model):
    name: str
    party: str
    #: the waiter this signal woke (FIFO), if any
    granted: list[str]
    value: int
    peer_id: str


class IpcSent(Model):
    name: str
    party: str
    #: delivered: straight to a waiting receiver; queued: into the queue; broadcast: "*"
    status: Literal["delivered", "queued", "broadcast"]
    receiver: str | None = None
    #: the queues a broadcast reached
    queues: list[str] = Field(default_factory=list)
    peer_id: str


class IpcReceived(Model):
    name: str
    party: str
    message: Any = None
    sender: str
    peer_id: str


class IpcDeleted(Model):
    name: str
    kind: Literal["semaphore", "queue"]
    #: parties that were waiting on it; their calls fail with not_found
    woken: list[str]
    peer_id: str


class IpcUndone(Model):
    party: str
    #: (semaphore, waiter) for each waiter that got a unit the party gave back
    granted: list[tuple[str, str]]
    peer_id: str


# --- shared files (sharing and search, issue 6) -----------------------------------------

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
#: Longest lookup query (characters).
MAX_QUERY = 255


class SharedFile(Model):
    """One file a peer shares: identified by name, size and SHA-256."""

    name: str = Field(min_length=1, max_length=255)
    size: int = Field(ge=0)
    sha256: Sha256
    kind: Literal["local", "downloaded", "replicated"] = "local"


class ShareIndex(Model):
    """A peer's full file list, sent to the tracker whenever it changes."""

    files: list[SharedFile] = Field(max_length=100_000)


class ShareListing(Model):
    kind: str
    directory: str
    files: list[SharedFile]
    peer_id: str


class ShareRescan(Model):
    added: list[str]
    changed: list[str]
    removed: list[str]
    files_read: int
    peer_id: str


class ShareLookup(Model):
    """``query`` matched as ``mode``; or ``sha256`` (then ``query`` is ignored)."""

    query: str = Field(default="", max_length=MAX_QUERY)
    mode: Literal["exact", "substring", "glob"] = "exact"
    sha256: Sha256 | None = None


class ShareHolder(Model):
    peer_id: str
    address: str


class ShareHit(Model):
    name: str
    size: int
    sha256: str
    holders: list[ShareHolder]


class ShareHits(Model):
    hits: list[ShareHit]
    seconds: float = 0.0


class ChunkList(Model):
    """How a holder cuts a file into chunks, with each chunk's SHA-256."""

    sha256: Sha256
    size: int = Field(ge=0)
    chunk_size: int = Field(gt=0)
    chunks: list[Sha256]


class DownloadRequest(Model):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    sha256: Sha256 | None = None
    #: Save under this name in ``downloaded/`` (default: the file's name).
    save_as: str | None = Field(default=None, min_length=1, max_length=255)


class DownloadResult(Model):
    name: str
    path: str
    size: int
    sha256: str
    seconds: float
    bytes_fetched: int
    resumed_bytes: int
    sources: list[str]
    chunks_refetched: int


class ShareSummary(Model):
    count: int
    mean: float
    stdev: float
    min: float
    max: float


class ShareStats(Model):
    search_seconds: ShareSummary
    download_mbps: ShareSummary
    #: all bytes downloaded / all seconds spent downloading (MB/s)
    throughput_mbps: float
    queries: list[dict[str, Any]]
    downloads: list[dict[str, Any]]
    peer_id: str


# --- owned files (SPEC §5): encrypted on the owner, stored as ciphertext on holders ---

#: Header carrying an :class:`OwnerAuth` (JSON) on holder downloads and deletes.
OWNER_AUTH_HEADER = "X-PeerOS-Owner-Auth"


class OwnerAuth(Model):
    """An owner's Ed25519 signature over (op, owner id, name, timestamp, nonce)."""

    op: Literal["download", "delete"]
    owner_id: PeerId
    name: str = Field(min_length=1, max_length=255)
    timestamp: float
    nonce: str = Field(pattern=r"^[0-9a-f]{32}$")
    #: the raw 32-byte Ed25519 public key, base64; must hash to ``owner_id``
    public_key: str = Field(max_length=64)
    signature: str = Field(max_length=128)


class OwnedAllocate(Model):
    name: str = Field(min_length=1, max_length=255)
    replicas: int = Field(default=2, ge=1, le=16)
    #: bytes each holder will store (wrapped key + ciphertext)
    stored_size: int = Field(ge=0)


class OwnedHolder(Model):
    peer_id: str
    address: str
    alive: bool = True


class OwnedHolders(Model):
    holders: list[OwnedHolder]


class OwnedRecord(Model):
    name: str
    owner_id: str
    owner_address: str
    #: plaintext bytes
    size: int
    #: bytes on each holder
    stored_size: int
    holders: list[OwnedHolder]
    #: the replica count the tracker maintains
    replicas: int = 0
    created: float


class OwnedCommit(Model):
    name: str = Field(min_length=1, max_length=255)
    size: int = Field(ge=0)
    stored_size: int = Field(ge=0)
    holders: list[PeerId] = Field(min_length=1)
    created: float


class OwnedList(Model):
    files: list[OwnedRecord]


class OwnedSigned(Model):
    """A signed request to the tracker (locate for download, delete)."""

    auth: OwnerAuth


class OwnedStored(Model):
    """A holder's receipt for one stored ciphertext."""

    owner_id: str
    name: str
    stored_size: int
    peer_id: str


class OwnedDeleted(Model):
    name: str
    #: holders that removed their copy
    removed_from: list[str]
    #: holders that could not be reached (their copy may remain)
    unreachable: list[str] = Field(default_factory=list)


#: Header on a holder-to-holder copy made for re-replication (never overwrites).
REPLICA_HEADER = "X-PeerOS-Replica"


class OwnedReplicate(Model):
    """The tracker asks a surviving holder to push its copy to ``target``."""

    owner_id: PeerId
    name: str = Field(min_length=1, max_length=255)
    target: OwnedHolder


class OwnedBadCopy(Model):
    """The owner reports a holder whose copy failed authentication."""

    name: str = Field(min_length=1, max_length=255)
    holder: PeerId


# --- shared files, continued: replication and flooding (issue 6) ----------------------


class ShareAssignment(Model):
    """The coordinator asks this peer to fetch a copy of a file into ``replicated/``."""

    sha256: Sha256
    name: str
    size: int = Field(ge=0)
    holders: list[ShareHolder]


class ShareAssignments(Model):
    assignments: list[ShareAssignment]


class FloodHello(Model):
    """Neighbour liveness: who I am (my cluster address) and my live neighbours."""

    address: Address
    neighbors: list[Address] = Field(max_length=256)


class FloodQuery(Model):
    #: 16 random bytes, hex
    id: str = Field(pattern=r"^[0-9a-f]{32}$")
    query: str = Field(default="", max_length=MAX_QUERY)
    mode: Literal["exact", "substring", "glob"] = "exact"
    sha256: Sha256 | None = None
    ttl: int = Field(ge=1, le=16)
    hops: int = Field(default=0, ge=0, le=16)
    #: the cluster address of the peer that forwarded it to us
    sender: Address


class FloodHit(Model):
    name: str
    size: int
    sha256: str
    holder: ShareHolder
    hops: int


class FloodHits(Model):
    hits: list[FloodHit]
    seconds: float = 0.0


class FloodSearch(Model):
    """A user's flooding search: a name (``mode``) or a hash, within ``ttl`` hops."""

    query: str = Field(default="", max_length=MAX_QUERY)
    mode: Literal["exact", "substring", "glob"] = "exact"
    sha256: Sha256 | None = None
    ttl: int = Field(default=7, ge=1, le=16)


class FloodStats(Model):
    neighbors: list[str]
    received: int
    duplicates: int
    answered: int
    #: query id -> times this peer forwarded it (never more than once)
    forwarded: dict[str, int]
    #: query id -> messages this peer received for it
    received_by_id: dict[str, int]
    peer_id: str
