"""Every request and response body on the wire, as pydantic models, in one module.

Both planes speak JSON bodies described here (file bodies, later, are raw bytes).
Routes and clients never build dicts by hand: they validate into and dump out of these
models, so a malformed body fails in one place with a message that names the field.

``PROTOCOL_VERSION`` travels in the ``PeerOS-Protocol`` header of every request; a
server refuses a different major version with a clear error.
"""

from __future__ import annotations

from typing import Annotated, Literal

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
    #: Worker slots the task needs.
    cpu: int = Field(default=1, ge=1, le=4096)
    #: Peers that must not be chosen (e.g. one that just failed this task).
    exclude: list[PeerId] = Field(default_factory=list, max_length=1024)


class Placement(Model):
    peer_id: PeerId
    address: Address


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
