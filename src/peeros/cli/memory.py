"""``peeros set-mem``, ``get-mem``, ``del-mem`` and ``keys``."""

from __future__ import annotations

import json
from typing import Any

import click

from peeros.cli.common import client_command, print_json
from peeros.client import Client

on_option = click.option(
    "--on",
    "on",
    metavar="PEER",
    help="Peer id or HOST:PORT whose store to use (default: this peer).",
)


def parse_value(text: str) -> Any:
    """JSON when the text is valid JSON, else the text itself as a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@click.command("set-mem")
@click.option("--key", required=True)
@click.option("--value", required=True, help="JSON, or any other text (stored as a string).")
@click.option("--ttl", type=click.FloatRange(min=0, min_open=True), default=None, help="Seconds.")
@on_option
@client_command
def set_mem(
    client: Client, as_json: bool, key: str, value: str, ttl: float | None, on: str | None
) -> None:
    """Store a value under a key."""
    memory = client.memory.on(on) if on else client.memory
    entry = memory.set(key, parse_value(value), ttl)
    if as_json:
        print_json(entry)
    else:
        click.echo(f"OK ({key} on {entry.peer_id}{f', expires in {ttl:g}s' if ttl else ''})")


@click.command("get-mem")
@click.option("--key", required=True)
@on_option
@client_command
def get_mem(client: Client, as_json: bool, key: str, on: str | None) -> None:
    """Print the value of a key (exit code 1 when it does not exist)."""
    memory = client.memory.on(on) if on else client.memory
    entry = memory.entry(key)
    if as_json:
        print_json(entry)
    else:
        click.echo(entry.value if isinstance(entry.value, str) else json.dumps(entry.value))


@click.command("del-mem")
@click.option("--key", required=True)
@on_option
@client_command
def del_mem(client: Client, as_json: bool, key: str, on: str | None) -> None:
    """Delete a key (exit code 1 when it does not exist)."""
    memory = client.memory.on(on) if on else client.memory
    memory.delete(key)
    if as_json:
        print_json({"key": key, "deleted": True})
    else:
        click.echo(f"deleted {key}")


@click.command("keys")
@click.option("--pattern", default="*", show_default=True, help="Redis-style glob.")
@on_option
@client_command
def keys(client: Client, as_json: bool, pattern: str, on: str | None) -> None:
    """List keys matching a pattern."""
    memory = client.memory.on(on) if on else client.memory
    found = memory.keys(pattern)
    if as_json:
        print_json(found)
    else:
        for k in found:
            click.echo(k)
