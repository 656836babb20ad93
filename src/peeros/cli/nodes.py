"""``peeros tracker``, ``peeros peer`` and ``peeros token``: starting nodes."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import click

from peeros.config import (
    DEFAULT_HOST,
    DEFAULT_PEER_PORT,
    DEFAULT_TRACKER_PORT,
    PeerSettings,
    TrackerSettings,
    default_data_dir,
    env_override,
)
from peeros.errors import NotFound
from peeros.runner import run_until_signal, setup_logging
from peeros.security import pki

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the node keeps its keys and state (default $PEEROS_DATA_DIR or ~/.peeros).",
)
log_option = click.option("--log-level", default="INFO", show_default=True)


def _port(_ctx: click.Context, _param: click.Parameter, value: int) -> int:
    if not 0 <= value <= 65535:
        raise click.BadParameter(f"{value} is not a port (0-65535; 0 picks a free one)")
    return value


def _positive(_ctx: click.Context, param: click.Parameter, value: float) -> float:
    if value <= 0:
        raise click.BadParameter(f"{param.name} must be > 0, got {value}")
    return value


@click.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True)
@click.option("--port", default=DEFAULT_TRACKER_PORT, show_default=True, callback=_port)
@data_dir_option
@click.option(
    "--dead-after",
    default=30.0,
    show_default=True,
    callback=_positive,
    help="Seconds of silence before a peer is declared dead.",
)
@click.option(
    "--cert-host", multiple=True, help="Extra host name or IP for the tracker's certificate."
)
@click.option(
    "--share-replicas",
    type=click.IntRange(1, 100),
    default=2,
    show_default=True,
    help="Live copies kept of every shared file (1 = no replication).",
)
@log_option
def tracker(
    host: str,
    port: int,
    data_dir: Path | None,
    dead_after: float,
    cert_host: tuple[str, ...],
    share_replicas: int,
    log_level: str,
) -> None:
    """Run a tracker: registry, placement and the cluster CA."""
    from peeros.tracker.node import prepare, run_tracker

    setup_logging(log_level)
    settings = env_override(
        TrackerSettings(
            data_dir=data_dir or default_data_dir() / "tracker",
            host=host,
            port=port,
            dead_after=dead_after,
            sweep_interval=min(1.0, dead_after / 4),
            cert_hosts=cert_host,
            share_replicas=share_replicas,
        )
    )
    _ca, token = prepare(settings)
    click.echo(f"join token: {token}", err=True)

    async def main(stop: asyncio.Event) -> None:
        await run_tracker(settings, stop)

    run_until_signal(main)


def _parse_neighbors(value: str) -> tuple[str, ...]:
    from peeros.protocol import ADDRESS_RE

    found = tuple(v.strip() for v in value.split(",") if v.strip())
    for v in found:
        if not ADDRESS_RE.match(v):
            raise click.BadParameter(
                f"expected HOST:PORT, got {v[:60]!r}", param_hint="--neighbors"
            )
    return found


def _parse_resources(items: tuple[str, ...]) -> dict[str, int]:
    found: dict[str, int] = {}
    for item in items:
        name, sep, count = item.partition("=")
        if not sep or not name or not count.isdigit():
            raise click.BadParameter(f"expected NAME=N, got {item!r}", param_hint="--resource")
        found[name] = int(count)
    return found


@click.command()
@click.option("--tracker", "tracker_addr", metavar="HOST:PORT", help="The tracker to join.")
@click.option("--join", "join_token", metavar="TOKEN", help="Join token (first start only).")
@click.option("--host", default=DEFAULT_HOST, show_default=True)
@click.option("--port", default=DEFAULT_PEER_PORT, show_default=True, callback=_port)
@click.option("--advertise", metavar="HOST:PORT", help="Address other nodes should use.")
@click.option(
    "--api-port",
    default=0,
    show_default=True,
    callback=_port,
    help="Local API port on 127.0.0.1 (0 = any free port, see api.json).",
)
@data_dir_option
@click.option("--heartbeat-interval", default=10.0, show_default=True, callback=_positive)
@click.option(
    "--placement-leases",
    type=click.IntRange(0, 1024),
    default=8,
    show_default=True,
    help="Placements leased from the tracker ahead of need (0 = ask for every submission).",
)
@click.option(
    "--slots", type=click.IntRange(1, 4096), default=None, help="Worker slots (default: CPUs)."
)
@click.option(
    "--policy",
    default="fcfs",
    show_default=True,
    type=click.Choice(["fcfs", "sjf", "srtf", "priority", "priority-preemptive", "rr"]),
)
@click.option(
    "--quantum",
    "quantum_ms",
    default=100.0,
    show_default=True,
    callback=_positive,
    help="Round-robin quantum in ms.",
)
@click.option(
    "--task-quota",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Tasks each requesting peer may submit per --task-quota-window (0 = no limit).",
)
@click.option("--task-quota-window", default=60.0, show_default=True, callback=_positive)
@click.option(
    "--cache-ttl",
    default=300.0,
    show_default=True,
    callback=_positive,
    help="Seconds a cached task result stays valid.",
)
@click.option(
    "--task-memory-mb",
    type=click.IntRange(16),
    default=1024,
    show_default=True,
    help="Address space of a task that declares no --memory-mb.",
)
@click.option(
    "--pipeline",
    type=click.IntRange(0, 64),
    default=2,
    show_default=True,
    help="Under FCFS, tasks handed to a busy worker ahead of time (0 = none).",
)
@click.option(
    "--max-workers",
    type=click.IntRange(0),
    default=0,
    help="Sandboxed workers at most (0 = 4 x slots + 4).",
)
@click.option(
    "--resp-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Redis-protocol port for the memory store on 127.0.0.1 (0 = any free port).",
)
@click.option("--no-resp", is_flag=True, help="Do not serve the Redis protocol.")
@click.option(
    "--mem-max-keys",
    type=click.IntRange(1),
    default=100_000,
    show_default=True,
    help="Keys each requesting peer may hold in this store.",
)
@click.option(
    "--mem-max-mb",
    type=click.IntRange(1),
    default=256,
    show_default=True,
    help="MiB each requesting peer may hold in this store.",
)
@click.option(
    "--max-file-mb",
    type=click.IntRange(1),
    default=4096,
    show_default=True,
    help="Largest file this peer stores (put-file), in MiB.",
)
@click.option(
    "--owned-quota-mb",
    type=click.IntRange(0),
    default=1024,
    show_default=True,
    help="Owned-file ciphertext this peer holds per owner, in MiB.",
)
@click.option(
    "--memory-pool-mb",
    type=click.IntRange(1),
    default=4096,
    show_default=True,
    help="Task memory pool that --memory-mb reservations come from.",
)
@click.option(
    "--alloc-policy",
    type=click.Choice(["first", "best", "worst", "next"]),
    default="first",
    show_default=True,
)
@click.option(
    "--resource",
    "resources",
    multiple=True,
    metavar="NAME=N",
    help="A named resource for the Banker's algorithm (repeatable).",
)
@click.option("--web-ui", is_flag=True, help="Also serve the web dashboard (a child process).")
@click.option("--web-port", default=5000, show_default=True, callback=_port, help="0 = any.")
@click.option("--web-host", default="127.0.0.1", show_default=True)
@click.option(
    "--share",
    "share_dir",
    type=click.Path(file_okay=False),
    help="Folder to share (default <data dir>/shared; downloaded/ and replicated/ beside it).",
)
@click.option(
    "--neighbors",
    metavar="HOST:PORT,...",
    default="",
    help="Flooding mode: neighbour peers to greet (more are learned from them).",
)
@click.option(
    "--rescan-interval",
    default=30.0,
    show_default=True,
    callback=_positive,
    help="Seconds between rescans of the shared folders.",
)
@log_option
def peer(
    tracker_addr: str | None,
    join_token: str | None,
    host: str,
    port: int,
    advertise: str | None,
    api_port: int,
    data_dir: Path | None,
    heartbeat_interval: float,
    placement_leases: int,
    slots: int | None,
    policy: str,
    quantum_ms: float,
    task_quota: int,
    task_quota_window: float,
    cache_ttl: float,
    task_memory_mb: int,
    max_workers: int,
    pipeline: int,
    resp_port: int,
    no_resp: bool,
    mem_max_keys: int,
    mem_max_mb: int,
    max_file_mb: int,
    owned_quota_mb: int,
    memory_pool_mb: int,
    alloc_policy: str,
    resources: tuple[str, ...],
    web_ui: bool,
    web_port: int,
    web_host: str,
    share_dir: str | None,
    rescan_interval: float,
    neighbors: str,
    log_level: str,
) -> None:
    """Run a peer: lend this machine's CPU, memory and disk to the cluster."""
    from peeros.peer.node import PeerNode

    setup_logging(log_level)
    if join_token:
        pki.JoinToken.parse(join_token)  # fail fast, before touching the network
    settings = PeerSettings(
        data_dir=data_dir or default_data_dir(),
        tracker=tracker_addr,
        join_token=join_token,
        host=host,
        port=port,
        advertise=advertise,
        api_port=api_port,
        heartbeat_interval=heartbeat_interval,
        placement_leases=placement_leases,
        policy=policy,
        quantum_ms=quantum_ms,
        task_quota=task_quota,
        task_quota_window=task_quota_window,
        cache_ttl=cache_ttl,
        task_memory_mb=task_memory_mb,
        max_workers=max_workers,
        pipeline=pipeline,
        resp_port=None if no_resp else resp_port,
        mem_max_keys=mem_max_keys,
        mem_max_bytes=mem_max_mb << 20,
        max_file_bytes=max_file_mb << 20,
        owned_quota_bytes=owned_quota_mb << 20,
        memory_pool_mb=memory_pool_mb,
        alloc_policy=alloc_policy,
        resources=_parse_resources(resources),
        share_dir=str(Path(share_dir).resolve()) if share_dir else None,
        rescan_interval=rescan_interval,
        neighbors=_parse_neighbors(neighbors),
    )
    if slots:
        settings = dataclasses.replace(settings, slots=slots)
    node = PeerNode(env_override(settings))
    if not web_ui:
        run_until_signal(node.run)
        return
    from peeros.dashboard.child import spawn_dashboard, stop_dashboard

    dashboard = spawn_dashboard(node.data_dir, web_host, web_port)
    try:
        run_until_signal(node.run)
    finally:
        stop_dashboard(dashboard)


@click.command()
@data_dir_option
def token(data_dir: Path | None) -> None:
    """Print the tracker's join token again."""
    directory = data_dir or default_data_dir() / "tracker"
    path = directory / pki.TOKEN_FILE
    if not path.exists():
        raise NotFound(f"no join token in {directory} (has a tracker been started there?)")
    click.echo(path.read_text().strip())
