"""``peeros share rescan``, ``list``, ``lookup``, ``download``, ``stats``: sharing and search."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from peeros.cli.common import client_command, human_bytes, print_json
from peeros.cli.files import TransferBar
from peeros.client import Client
from peeros.client_share import Share
from peeros.protocol import ShareSummary


@click.group()
def share() -> None:
    """This peer's shared folders (shared/, downloaded/, replicated/)."""


@share.command()
@client_command
def rescan(client: Client, as_json: bool) -> None:
    """Rescan the shared folders now (unchanged files are not read again)."""
    got = Share(client).rescan()
    if as_json:
        print_json(got)
        return
    click.echo(f"{len(got.added)} added, {len(got.changed)} changed, {len(got.removed)} removed")


@click.command(name="list")
@click.argument("kind", type=click.Choice(["local", "downloaded", "replicated"]), default="local")
@client_command
def list_shared(client: Client, as_json: bool, kind: str) -> None:
    """List the files of one shared folder: name, size, SHA-256."""
    got = Share(client).list(kind)
    if as_json:
        print_json(got.files)
        return
    table = Table("name", "size", "sha256", title=f"{kind}: {got.directory}")
    for f in got.files:
        table.add_row(f.name, human_bytes(f.size), f.sha256[:16])
    Console().print(table)


@click.command()
@click.argument("query", default="")
@click.option("--glob", "mode", flag_value="glob", help="QUERY is a glob pattern (*, ?, [..]).")
@click.option("--substring", "mode", flag_value="substring", help="QUERY is part of the name.")
@click.option("--hash", "sha256", metavar="H", help="Look up by SHA-256 instead of by name.")
@client_command
def lookup(client: Client, as_json: bool, query: str, mode: str | None, sha256: str | None) -> None:
    """Find files in the tracker's index, with the peers that hold them."""
    got = Share(client).lookup(query, mode or "exact", sha256)
    if as_json:
        print_json(got.hits)
        return
    if not got.hits:
        click.echo("no match", err=True)
        return
    table = Table("name", "size", "sha256", "holders")
    for h in got.hits:
        holders = ", ".join(f"{x.peer_id[:8]}@{x.address}" for x in h.holders)
        table.add_row(h.name, human_bytes(h.size), h.sha256[:16], holders)
    Console().print(table)


@click.command()
@click.argument("name", required=False)
@click.option("--hash", "sha256", metavar="H", help="Download by SHA-256.")
@click.option("--save", "save_as", metavar="NAME", help="Name in downloaded/ (default: its own).")
@client_command
def download(
    client: Client, as_json: bool, name: str | None, sha256: str | None, save_as: str | None
) -> None:
    """Fetch a file from its holders into downloaded/: chunks from several at once, each
    verified; an interrupted download resumes when run again."""
    if not name and not sha256:
        raise click.UsageError("give a NAME or --hash H")
    with TransferBar(not as_json) as bar:
        got = Share(client).download(
            name, sha256, save_as, lambda done, total: bar("receiving", done, total)
        )
    if as_json:
        print_json(got)
        return
    rate = (got.size - got.resumed_bytes) / got.seconds / 1e6 if got.seconds > 0 else 0.0
    click.echo(
        f"{got.path}: {human_bytes(got.size)} from {len(got.sources)} holder(s) in "
        f"{got.seconds:.2f} s ({rate:.1f} MB/s), sha256 {got.sha256[:16]}... verified"
        + (f", resumed at {human_bytes(got.resumed_bytes)}" if got.resumed_bytes else "")
    )


def _line(label: str, s: ShareSummary, unit: str) -> str:
    return (
        f"{label}: n={s.count} mean={s.mean:.4f} stdev={s.stdev:.4f} "
        f"min={s.min:.4f} max={s.max:.4f} {unit}"
    )


@click.command()
@client_command
def stats(client: Client, as_json: bool) -> None:
    """Search times, download speeds and throughput, with the latest records."""
    got = Share(client).stats()
    if as_json:
        print_json(got)
        return
    click.echo(_line("search time", got.search_seconds, "s"))
    click.echo(_line("download speed", got.download_mbps, "MB/s"))
    click.echo(f"throughput: {got.throughput_mbps:.2f} MB/s")


@click.command()
@click.argument("query", default="")
@click.option("--glob", "mode", flag_value="glob", help="QUERY is a glob pattern (*, ?, [..]).")
@click.option("--substring", "mode", flag_value="substring", help="QUERY is part of the name.")
@click.option("--hash", "sha256", metavar="H", help="Search by SHA-256 instead of by name.")
@click.option("--ttl", type=int, default=7, show_default=True, help="Hops the query may travel.")
@client_command
def search(
    client: Client, as_json: bool, query: str, mode: str | None, sha256: str | None, ttl: int
) -> None:
    """Flooding search without a tracker: ask the neighbours, who ask theirs, up to --ttl hops."""
    got = Share(client).search(query, mode or "exact", sha256, ttl)
    if as_json:
        print_json(got.hits)
        return
    if not got.hits:
        click.echo(f"no match within {ttl} hops", err=True)
        return
    table = Table("name", "size", "sha256", "holder", "hops")
    for h in got.hits:
        holder = f"{h.holder.peer_id[:8]}@{h.holder.address}"
        table.add_row(h.name, human_bytes(h.size), h.sha256[:16], holder, str(h.hops))
    Console().print(table)
