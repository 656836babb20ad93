"""The ``peeros`` command. Each command group lives in its own module; this one wires
them and turns every PeerOS error into one clear line on stderr and a non-zero exit."""

from __future__ import annotations

import sys

import click

from peeros import __version__
from peeros.cli.ca import ca
from peeros.cli.cluster import peers, status
from peeros.cli.dashboard import dashboard
from peeros.cli.files import get_file, list_files, put_file, rm_file
from peeros.cli.ipc import ipc
from peeros.cli.kernel import alloc, deadlock, proc
from peeros.cli.memory import del_mem, get_mem, keys, set_mem
from peeros.cli.nodes import peer, token, tracker
from peeros.cli.owned import owned
from peeros.cli.sched import sched
from peeros.cli.share import download, list_shared, lookup, search, share, stats
from peeros.cli.tasks import batch, cancel, cpu, history
from peeros.cli.up import up
from peeros.errors import PeerOSError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="peeros")
def cli() -> None:
    """PeerOS: share CPU, memory and disk across a group of machines."""


for command in (
    *(tracker, peer, up, token, status, peers),
    *(cpu, batch, cancel, history, sched),
    *(set_mem, get_mem, del_mem, keys),
    *(proc, deadlock, alloc, ipc),
    *(put_file, get_file, list_files, rm_file),
    owned,
    dashboard,
    *(share, list_shared, lookup, download, stats, search, ca),
):
    cli.add_command(command)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except PeerOSError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
