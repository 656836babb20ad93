"""Enrollment, membership, placement and status: what nodes say to each other."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from peeros.protocol.base import Address, Model, PeerId

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
    #: Placements granted (each task placed, and each lease granted ahead of need).
    placements_served: int = 0
    #: Placement requests answered (one per batch, per lease refill).
    placement_requests: int = 0


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
    #: Peer links (``net/link.py``): open to other nodes, and calls served to theirs.
    links_open: int = 0
    link_calls_served: int = 0
    #: Calls served on the local lane (the blocking client's task submissions).
    lane_calls_served: int = 0
