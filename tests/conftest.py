"""Fixtures that start real PeerOS processes on 127.0.0.1 (port 0, temp dirs).

Every process a test starts is registered here and stopped in teardown, even when the
test fails. Nothing sleeps to synchronise: :func:`wait_until` polls with a deadline.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from peeros.client import Client
from peeros.launcher import LocalCluster, NodeProcess, start_peer, start_tracker, stop
from peeros.net.client import ClusterClient
from peeros.security import identity, pki

#: Short timers so membership tests run in seconds.
FAST_PEER = ["--heartbeat-interval", "0.3"]
FAST_TRACKER = ["--dead-after", "1.5"]


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the condition may raise until the system is ready
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last error: {last_exc!r})")


class Nodes:
    """Starts nodes for one test and guarantees they are all stopped afterwards."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[NodeProcess] = []
        self.clusters: list[LocalCluster] = []

    def tracker(
        self, name: str = "tracker", port: int = 0, extra: list[str] | None = None
    ) -> NodeProcess:
        node = start_tracker(self.root / name, port, extra if extra is not None else FAST_TRACKER)
        self.started.append(node)
        return node

    def peer(
        self,
        tracker: NodeProcess | str,
        name: str,
        token: str | None = None,
        extra: list[str] | None = None,
        port: int = 0,
        wait: bool = True,
    ) -> NodeProcess:
        address = tracker if isinstance(tracker, str) else tracker.info["address"]
        if token is None and isinstance(tracker, NodeProcess):
            token = token_of(tracker)
        node = start_peer(
            self.root / name,
            address,
            token,
            port,
            extra if extra is not None else FAST_PEER,
            wait=wait,
        )
        self.started.append(node)
        if wait:  # ready means registered: the tracker has had its first heartbeat
            wait_until(lambda: node.info["peer_id"] in registered(node.data_dir, address))
        return node

    def cluster(self, n_peers: int = 3, **kwargs: Any) -> LocalCluster:
        c = LocalCluster(self.root / f"cluster-{len(self.clusters)}")
        self.clusters.append(c)
        c.start(
            n_peers,
            peer_extra=kwargs.get("peer_extra", FAST_PEER),
            tracker_extra=kwargs.get("tracker_extra", FAST_TRACKER),
        )
        # Ready means the tracker has heard from every peer, so placement sees them all.
        with Client(data_dir=c.peers[0].data_dir) as client:
            wait_until(lambda: sum(p.alive for p in client.peers()) == n_peers)
        return c

    def kill9(self, node: NodeProcess) -> None:
        os.killpg(node.pid, signal.SIGKILL)
        node.proc.wait(timeout=10)

    def stop_all(self) -> None:
        for c in self.clusters:
            c.stop()
        stop(self.started)


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Nodes]:
    n = Nodes(tmp_path)
    try:
        yield n
    finally:
        n.stop_all()


def registered(data_dir: Path, tracker_address: str) -> set[str]:
    """Peer ids the tracker lists, asked with the credentials of the node in ``data_dir``."""

    async def fetch() -> set[str]:
        client = member_client(data_dir)
        try:
            peers = await client.request(tracker_address, "GET", "/v1/peers")
            return {p["peer_id"] for p in peers["peers"] if p["alive"]}
        finally:
            await client.close()

    return asyncio.run(fetch())


def token_of(tracker: NodeProcess) -> str:
    return (tracker.data_dir / pki.TOKEN_FILE).read_text().strip()


def member_client(data_dir: Path, timeout: float = 5.0) -> ClusterClient:
    """A cluster-plane client that acts with the credentials of the node in ``data_dir``."""
    creds = pki.Credentials.from_dir(data_dir)
    return ClusterClient(pki.client_context(creds), timeout)


def enrollment_client(tracker: NodeProcess, directory: Path) -> ClusterClient:
    """A cluster-plane client holding only an *enrollment* certificate (what a node has
    before it joins: anyone with the join token can make one), its key in ``directory``."""
    token = pki.JoinToken.parse(token_of(tracker))
    me = identity.load_or_create(directory)
    boot = pki.enrollment_ca(token.ca_fingerprint).issue(me.public_key, me.peer_id)
    (directory / "boot.crt").write_text(pki.cert_pem(boot))
    creds = pki.Credentials(directory / "node.key", directory / "boot.crt", "")
    return ClusterClient(pki.client_context(creds, verify_server=False), 5)
