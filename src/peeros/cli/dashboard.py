"""``peeros dashboard``: the web dashboard, a client of one peer's local API."""

from __future__ import annotations

from pathlib import Path

import click

from peeros.config import default_data_dir
from peeros.runner import setup_logging

DEFAULT_WEB_PORT = 5000
DEFAULT_WEB_HOST = "127.0.0.1"


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The peer's data directory (its api.json and api.token); the dashboard keeps "
    "dashboard.token and dashboard.json there. Default $PEEROS_DATA_DIR or ~/.peeros.",
)
@click.option("--peer", metavar="URL", help="Local API of the peer (with --token).")
@click.option("--token", metavar="T", help="Local API token of --peer.")
@click.option("--host", default=DEFAULT_WEB_HOST, show_default=True)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_WEB_PORT,
    show_default=True,
    help="0 picks a free port (see dashboard.json).",
)
@click.option("--parent-pid", type=int, default=None, hidden=True)
@click.option("--log-level", default="WARNING", show_default=True)
def dashboard(
    data_dir: Path | None,
    peer: str | None,
    token: str | None,
    host: str,
    port: int,
    parent_pid: int | None,
    log_level: str,
) -> None:
    """Serve the web dashboard; prints its login URL (it carries a token)."""
    from peeros.dashboard.server import serve

    if peer and not token:
        raise click.BadParameter("--token is required with --peer", param_hint="--token")
    setup_logging(log_level)
    serve(
        (data_dir or default_data_dir()).resolve(),
        host=host,
        port=port,
        peer=peer,
        token=token,
        parent_pid=parent_pid,
    )
