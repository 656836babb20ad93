"""``peeros owned upload|download|delete|list``: encrypted files this peer owns."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from peeros.cli.common import client_command, human_bytes, print_json
from peeros.cli.files import TransferBar
from peeros.client import Client
from peeros.errors import NotFound


@click.group()
def owned() -> None:
    """Files encrypted here and stored on other peers; only this peer can read them."""


@owned.command("upload")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--name", "name", help="Name to store it under (default: the file's name).")
@click.option(
    "--replicas", type=click.IntRange(1, 16), default=2, show_default=True, help="Holders."
)
@client_command
def upload(client: Client, as_json: bool, path: Path, name: str | None, replicas: int) -> None:
    """Encrypt PATH on this machine and store the ciphertext on other peers."""
    if not path.is_file():
        raise NotFound(f"no local file {path}")
    with TransferBar(not as_json) as bar:
        rec = client.owned.upload(path, name, replicas, progress=bar)
    if as_json:
        print_json(rec)
    else:
        holders = ", ".join(h.peer_id for h in rec.holders)
        click.echo(f"stored {rec.name!r} ({human_bytes(rec.size)}) encrypted on {holders}")


@owned.command("download")
@click.argument("name")
@click.option(
    "--save",
    required=True,
    type=click.Path(path_type=Path),
    help="Where to write it (a directory: saved there under its name).",
)
@client_command
def download(client: Client, as_json: bool, name: str, save: Path) -> None:
    """Fetch, verify and decrypt an owned file."""
    with TransferBar(not as_json) as bar:
        info = client.owned.download(name, save, progress=bar)
    if as_json:
        print_json(info)
    else:
        click.echo(
            f"saved {name!r} to {save}: {human_bytes(info.size)}, sha256 {info.sha256} (verified)"
        )


@owned.command("delete")
@click.argument("name")
@client_command
def delete(client: Client, as_json: bool, name: str) -> None:
    """Remove an owned file from every holder and from the tracker."""
    got = client.owned.delete(name)
    if as_json:
        print_json(got)
        return
    click.echo(f"deleted {got.name!r} from {len(got.removed_from)} holder(s)")
    if got.unreachable:
        click.echo(f"warning: unreachable holders: {', '.join(got.unreachable)}", err=True)


@owned.command("list")
@click.option("--refresh", is_flag=True, help="Rebuild the list from the tracker.")
@client_command
def list_owned(client: Client, as_json: bool, refresh: bool) -> None:
    """List this peer's owned files: name, size, holders, created."""
    files = client.owned.list(refresh)
    if as_json:
        print_json(files)
        return
    table = Table(box=None)
    for col in ("name", "size", "holders", "created"):
        table.add_column(col, no_wrap=col != "name")
    for f in files:
        when = datetime.datetime.fromtimestamp(f.created).isoformat(sep=" ", timespec="seconds")
        holders = ", ".join(h.peer_id + ("" if h.alive else " (dead)") for h in f.holders)
        table.add_row(f.name, human_bytes(f.size), holders, when)
    Console(width=None if sys.stdout.isatty() else 200).print(table)
