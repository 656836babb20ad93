"""Memory, files on a peer, owned (encrypted) files and shared files."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from peeros.protocol.base import Address, ErrorDetail, Model, PeerId

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


#: Most names one batch download may ask for (the client splits longer lists).
MAX_FILE_BATCH = 1000
#: Content type of a batch download's body.
BATCH_TYPE = "application/x-peeros-files"


class FileBatchRequest(Model):
    """``POST /v1/files-batch``: several files in one response body.

    The body answers with, for each name in order, one line of JSON (a :class:`FileInfo`)
    followed by exactly ``size`` raw bytes; a file that cannot be sent is a line of
    :class:`FileBatchError` instead, and the body ends there.
    """

    names: list[str] = Field(min_length=1, max_length=MAX_FILE_BATCH)


class FileBatchError(Model):
    name: str
    error: ErrorDetail


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
