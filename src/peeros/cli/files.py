"""``peeros put-file``, ``get-file``, ``files`` and ``rm-file``: files on a peer."""

from __future__ import annotations

import datetime
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from peeros.cli.common import client_command, human_bytes, print_json
from peeros.client import Client
from peeros.client_files import Files
from peeros.errors import NotFound

F = TypeVar("F", bound=Callable[..., Any])

#: Transfers at least this big get a progress bar (on a terminal, without --json).
BAR_THRESHOLD = 8 << 20


def on_option(func: F) -> F:
    return click.option(
        "--on",
        "on",
        metavar="PEER",
        help="Another peer (peer id or HOST:PORT); default: the local peer.",
    )(func)


def _files(client: Client, on: str | None) -> Files:
    return client.files.on(on) if on else client.files


class TransferBar:
    """A rich progress bar on stderr, shown only for big transfers on a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._stage = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled or total < BAR_THRESHOLD:
            return
        if self._progress is None:
            self._progress = Progress(
                TextColumn("{task.description:>9}"),
                BarColumn(),
                DownloadColumn(binary_units=True),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self._progress.start()
            self._task = self._progress.add_task(stage, total=total)
        assert self._task is not None
        if stage != self._stage:
            self._stage = stage
            self._progress.reset(self._task, description=stage, total=total)
        self._progress.update(self._task, completed=done)

    def __enter__(self) -> TransferBar:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()


@click.command("put-file")
@click.option("--filename", required=True, help="Name to store the file under on the peer.")
@click.option(
    "--filepath",
    required=True,
    type=click.Path(path_type=Path),
    help="The local file to send.",
)
@on_option
@client_command
def put_file(client: Client, as_json: bool, filename: str, filepath: Path, on: str | None) -> None:
    """Store a local file on a peer (streamed, SHA-256 checked, atomic)."""
    if not filepath.is_file():
        raise NotFound(f"no local file {filepath}")
    with TransferBar(not as_json) as bar:
        info = _files(client, on).put(filename, filepath, progress=bar)
    if as_json:
        print_json(info)
    else:
        click.echo(
            f"stored {info.name!r} on peer {info.peer_id}: {human_bytes(info.size)}, "
            f"sha256 {info.sha256}"
        )


@click.command("get-file")
@click.option(
    "--filename",
    "filenames",
    required=True,
    multiple=True,
    help="Name of the file on the peer; repeat it to fetch several files into a directory.",
)
@click.option(
    "--save",
    required=True,
    type=click.Path(path_type=Path),
    help="Where to write it (a directory: saved there under its name; with several "
    "--filename, a directory).",
)
@on_option
@client_command
def get_file(
    client: Client, as_json: bool, filenames: tuple[str, ...], save: Path, on: str | None
) -> None:
    """Fetch a file from a peer; it appears at --save only once complete and verified.

    With several --filename, the files are fetched several at once into the directory
    --save, and saved only if every one of them arrived whole and verified.
    """
    if len(filenames) > 1:
        infos = _files(client, on).get_many(list(filenames), save)
        if as_json:
            print_json(infos)
        else:
            total = sum(i.size for i in infos)
            click.echo(
                f"saved {len(infos)} files from peer {infos[0].peer_id} to {save}: "
                f"{human_bytes(total)} in all, each SHA-256 verified"
            )
        return
    with TransferBar(not as_json) as bar:
        info = _files(client, on).get(filenames[0], save, progress=bar)
    if as_json:
        print_json(info)
    else:
        click.echo(
            f"saved {info.name!r} from peer {info.peer_id} to {save}: "
            f"{human_bytes(info.size)}, sha256 {info.sha256} (verified)"
        )


@click.command("files")
@on_option
@client_command
def list_files(client: Client, as_json: bool, on: str | None) -> None:
    """List the files stored on a peer: name, size, SHA-256, modified."""
    infos = _files(client, on).list()
    if as_json:
        print_json(infos)
        return
    table = Table(box=None)
    for col in ("name", "size", "sha256", "modified"):
        table.add_column(col, no_wrap=col != "name")
    for f in infos:
        when = datetime.datetime.fromtimestamp(f.modified).isoformat(sep=" ", timespec="seconds")
        table.add_row(f.name, human_bytes(f.size), f.sha256, when)
    Console(width=None if sys.stdout.isatty() else 200).print(table)


@click.command("rm-file")
@click.option("--filename", required=True, help="Name of the file on the peer.")
@on_option
@client_command
def rm_file(client: Client, as_json: bool, filename: str, on: str | None) -> None:
    """Delete a file from a peer."""
    deleted = _files(client, on).delete(filename)
    if as_json:
        print_json(deleted)
    else:
        click.echo(f"deleted {deleted.name!r} from peer {deleted.peer_id}")
