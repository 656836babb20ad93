"""``peeros status`` and ``peeros peers``."""

from __future__ import annotations

import sys
import time

import click
from rich.console import Console
from rich.table import Table

from peeros.cli.common import client_command, human_bytes, print_json
from peeros.client import Client


@click.command()
@client_command
def status(client: Client, as_json: bool) -> None:
    """Show this peer's identity, addresses, tracker link and load."""
    st = client.status()
    if as_json:
        print_json(st)
        return
    last = f"{time.time() - st.last_heartbeat_ok:.1f}s ago" if st.last_heartbeat_ok else "never"
    lines = [
        f"peer id        {st.peer_id}",
        f"cluster        {st.address}",
        f"local API      {st.api_url}",
        f"data dir       {st.data_dir}",
        f"tracker        {st.tracker or '(none)'} "
        f"({'reachable' if st.tracker_reachable else 'unreachable'}, last heartbeat {last})",
        f"load           {st.load.running} running, {st.load.queued} queued, "
        f"{st.load.slots} slots, CPU {st.load.cpu_percent:.0f}%, "
        f"{human_bytes(st.load.mem_free)} memory free, {human_bytes(st.load.disk_free)} disk free",
        f"known peers    {st.known_peers}",
        f"tasks          policy {st.policy}, "
        f"{'sandboxed (bubblewrap)' if st.sandboxed else 'NOT sandboxed (rlimits only)'}",
        f"memory         {st.memory_keys} keys, {st.memory_store}; "
        f"Redis protocol {st.resp_address or 'off'}",
        f"uptime         {st.uptime:.0f}s   version {st.version}",
    ]
    click.echo("\n".join(lines))


@click.command()
@client_command
def peers(client: Client, as_json: bool) -> None:
    """List the cluster's peers with their load and liveness (from the tracker)."""
    infos = client.peers()
    if as_json:
        print_json(infos)
        return
    table = Table(box=None)
    for col in ("peer id", "address", "alive", "running", "queued", "CPU", "mem free", "heartbeat"):
        table.add_column(col, no_wrap=True)
    now = time.time()
    for p in infos:
        table.add_row(
            p.peer_id,
            p.address,
            "yes" if p.alive else p.state,
            str(p.load.running),
            str(p.load.queued),
            f"{p.load.cpu_percent:.0f}%",
            human_bytes(p.load.mem_free),
            f"{now - p.last_heartbeat:.1f}s ago",
        )
    Console(width=None if sys.stdout.isatty() else 200).print(table)
