"""The kernel: processes, allocator and deadlocks; IPC semaphores and queues."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from peeros.protocol.base import Model

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
