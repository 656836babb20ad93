"""``peeros up``: a local cluster (tracker + N peers) in one command."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType

import click

from peeros.launcher import (
    LocalCluster,
    NodeProcess,
    dashboard_login_url,
    start_dashboard,
    stop,
    wait_for_info,
)


@click.command()
@click.option("--peers", "n_peers", type=click.IntRange(1, 64), default=3, show_default=True)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".peeros"),
    show_default=True,
)
@click.option(
    "--tracker-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="0 picks a free port.",
)
@click.option("--heartbeat-interval", type=float, default=None, help="Passed to every peer.")
@click.option("--dead-after", type=float, default=None, help="Passed to the tracker.")
@click.option(
    "--web-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port of the web dashboard of the first peer (0 picks a free port).",
)
@click.option("--no-web-ui", is_flag=True, help="Do not start the web dashboard.")
def up(
    n_peers: int,
    data_dir: Path,
    tracker_port: int,
    heartbeat_interval: float | None,
    dead_after: float | None,
    web_port: int,
    no_web_ui: bool,
) -> None:
    """Start a tracker and N peers on 127.0.0.1; Ctrl-C stops them all."""
    stopping = False

    def on_signal(_sig: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    peer_extra = ["--heartbeat-interval", str(heartbeat_interval)] if heartbeat_interval else []
    tracker_extra = ["--dead-after", str(dead_after)] if dead_after else []
    cluster = LocalCluster(data_dir.resolve())
    click.echo(f"starting a tracker and {n_peers} peers under {cluster.data_dir} ...")
    cluster.start(n_peers, tracker_port, peer_extra, tracker_extra)
    dashboards: list[NodeProcess] = []
    try:
        if not no_web_ui:
            dashboards.append(start_dashboard(cluster.peers[0].data_dir, web_port, wait=False))
            wait_for_info(dashboards[0], "dashboard.json")
        click.echo(f"tracker   {cluster.tracker_address}   (data {cluster.data_dir / 'tracker'})")
        for p in cluster.peers:
            click.echo(
                f"peer      {p.info['peer_id']}   cluster {p.info['address']}   "
                f"API {p.info['api_url']}"
            )
        click.echo(f"manifest  {cluster.data_dir / 'cluster.json'}")
        click.echo(f"try       peeros peers --data-dir {data_dir}")
        for d in dashboards:
            click.echo(f"dashboard {dashboard_login_url(d)}")
        click.echo("Ctrl-C to stop", nl=True)
        while not stopping:
            dead = [n for n in [*cluster.nodes(), *dashboards] if not n.alive()]
            if dead:
                for n in dead:
                    click.echo(
                        f"{n.role} in {n.data_dir} exited ({n.proc.returncode}):\n{n.log_tail()}",
                        err=True,
                    )
                break
            time.sleep(0.2)
    finally:
        click.echo("stopping ...")
        stop(dashboards)
        cluster.stop()
        click.echo("stopped")
