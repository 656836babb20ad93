"""Typed settings with their documented defaults.

Every knob lives here, once, with its default and its meaning. The CLI fills these from
its options; ``PEEROS_*`` environment variables override the defaults (see
:func:`env_override`), so tests and ``peeros up`` can shorten timers without new code paths.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

DEFAULT_TRACKER_PORT = 8888
DEFAULT_PEER_PORT = 9000
DEFAULT_HOST = "127.0.0.1"

#: Largest JSON body any route accepts (file bodies are streamed and limited separately).
MAX_JSON_BODY = 1 << 20

T = TypeVar("T")


def default_data_dir() -> Path:
    """``$PEEROS_DATA_DIR`` if set, else ``~/.peeros``."""
    env = os.environ.get("PEEROS_DATA_DIR")
    return Path(env) if env else Path.home() / ".peeros"


@dataclass(frozen=True)
class TrackerSettings:
    """How a tracker runs."""

    data_dir: Path
    host: str = DEFAULT_HOST
    #: Cluster-plane port (mutual TLS). 0 picks a free port (written to ``tracker.json``).
    port: int = DEFAULT_TRACKER_PORT
    #: A peer silent for this long is declared dead and leaves the live list.
    dead_after: float = 30.0
    #: How often the tracker looks for peers that went silent.
    sweep_interval: float = 1.0
    #: Extra names/addresses to put in the tracker certificate (besides host and 127.0.0.1).
    cert_hosts: tuple[str, ...] = ()
    #: Live copies the coordinator keeps of every shared file (1 = no replication).
    share_replicas: int = 2


@dataclass(frozen=True)
class PeerSettings:
    """How a peer runs."""

    data_dir: Path
    #: ``HOST:PORT`` of the tracker, or None for a peer with no tracker.
    tracker: str | None = None
    #: Join token, needed only on the first start (enrollment).
    join_token: str | None = None
    host: str = DEFAULT_HOST
    #: Cluster-plane port (mutual TLS). 0 picks a free port.
    port: int = DEFAULT_PEER_PORT
    #: Address other nodes should use to reach this peer (defaults to host:bound port).
    advertise: str | None = None
    #: User-plane (local API) host and port; 0 picks a free port, written to ``api.json``.
    api_host: str = DEFAULT_HOST
    api_port: int = 0
    #: Seconds between heartbeats to the tracker.
    heartbeat_interval: float = 10.0
    #: Placements leased from the tracker ahead of need, so that a single task needs no
    #: tracker round trip (0 = ask the tracker for every submission). Leases live one
    #: heartbeat interval.
    placement_leases: int = 8
    #: Worker slots this peer offers (defaults to the number of CPUs).
    slots: int = field(default_factory=lambda: os.cpu_count() or 1)
    #: Timeout of one cluster-plane request.
    request_timeout: float = 10.0
    #: Scheduling policy at start (fcfs, sjf, srtf, priority, priority-preemptive, rr).
    policy: str = "fcfs"
    #: Tasks handed to a busy worker ahead of time under FCFS (0 = none).
    pipeline: int = 2
    #: Round-robin quantum in milliseconds.
    quantum_ms: float = 100.0
    #: Priority aging: effective priority gained per second of waiting.
    aging: float = 0.5
    #: Tasks each requesting peer may submit per ``task_quota_window`` seconds (0 = no limit).
    task_quota: int = 0
    task_quota_window: float = 60.0
    #: Result cache: entries kept (LRU) and their time to live in seconds.
    cache_entries: int = 1024
    cache_ttl: float = 300.0
    #: Address space a task may use when it declares no ``memory_mb``.
    task_memory_mb: int = 1024
    #: Sandboxed worker processes at most (running + paused tasks).
    max_workers: int = 0
    #: Contiguous task-memory pool (MB) that ``memory_mb`` reservations come from.
    memory_pool_mb: int = 4096
    #: Placement policy of that pool: first, best, worst or next fit.
    alloc_policy: str = "first"
    #: Named resources for the Banker's algorithm (besides cpu and memory_mb).
    resources: dict[str, int] = field(default_factory=dict)
    #: Redis-protocol port on 127.0.0.1 for the memory store (0 = any free port, None = off).
    resp_port: int | None = 0
    #: Memory quotas per requesting peer (keys, bytes) and the largest value.
    mem_max_keys: int = 100_000
    mem_max_bytes: int = 256 << 20
    mem_max_value_bytes: int = 64 << 20
    #: Largest file a peer stores (``put-file``); bigger uploads get 413 and leave nothing.
    max_file_bytes: int = 4 << 30
    #: Bytes of owned-file ciphertext this peer holds per owner; more gets 429.
    owned_quota_bytes: int = 1 << 30
    #: Shared folder (``--share``); None means ``<data_dir>/shared``. ``downloaded/`` and
    #: ``replicated/`` sit beside it.
    share_dir: str | None = None
    #: Seconds between rescans of the shared folders.
    rescan_interval: float = 30.0
    #: Chunk size of the files this peer serves (unit of multi-source downloads).
    share_chunk_bytes: int = 4 << 20
    #: Flooding mode: neighbours (HOST:PORT) to greet at start; more are learned.
    neighbors: tuple[str, ...] = ()


_ENV_PREFIX = "PEEROS_"


def env_override(settings: T) -> T:
    """Return ``settings`` with fields replaced by ``PEEROS_<FIELD>`` environment values.

    Only scalar fields (str, int, float) are overridable; a malformed value is an error
    that names the variable rather than a silent fallback.
    """
    changes: dict[str, Any] = {}
    for f in fields(settings):  # type: ignore[arg-type]
        raw = os.environ.get(_ENV_PREFIX + f.name.upper())
        if raw is None or f.name == "data_dir":
            continue
        current = getattr(settings, f.name)
        try:
            if isinstance(current, bool):
                changes[f.name] = raw.lower() in {"1", "true", "yes"}
            elif isinstance(current, int):
                changes[f.name] = int(raw)
            elif isinstance(current, float):
                changes[f.name] = float(raw)
            elif isinstance(current, str) or current is None:
                changes[f.name] = raw
        except ValueError as exc:
            raise ValueError(f"{_ENV_PREFIX}{f.name.upper()}={raw!r} is not valid: {exc}") from exc
    return replace(settings, **changes) if changes else settings  # type: ignore[type-var]
