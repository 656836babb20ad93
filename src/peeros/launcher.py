"""Start and stop PeerOS node processes: ``peeros up`` and the test harness share this.

Nodes bind port 0 and write where they listen (``tracker.json``, ``api.json``) once
they are ready, so nothing here guesses ports or sleeps: it polls for those files with
a deadline, and fails early if the process died.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from peeros.errors import PeerOSError, Unavailable
from peeros.fsutil import write_json


@dataclass
class NodeProcess:
    role: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    info: dict[str, Any] = field(default_factory=dict)
    log_path: Path | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _spawn(role: str, args: list[str], data_dir: Path, log_dir: Path | None) -> NodeProcess:
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = (log_dir or data_dir) / f"{role}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    out: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "peeros", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        out.close()
    return NodeProcess(role, data_dir, proc, log_path=log_path)


def wait_for_info(node: NodeProcess, filename: str, timeout: float = 30.0) -> dict[str, Any]:
    """Poll until ``node`` writes ``filename`` with its own pid, or fail with its log."""
    path = node.data_dir / filename
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not node.alive():
            raise PeerOSError(
                f"{node.role} exited with code {node.proc.returncode} before it was ready:\n"
                + node.log_tail()
            )
        try:
            info: dict[str, Any] = json.loads(path.read_text())
            if info.get("pid") == node.pid:
                node.info = info
                return info
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise Unavailable(
        f"{node.role} did not become ready within {timeout:.0f}s:\n" + node.log_tail()
    )


def start_tracker(
    data_dir: Path, port: int = 0, extra: list[str] | None = None, log_dir: Path | None = None
) -> NodeProcess:
    (data_dir / "tracker.json").unlink(missing_ok=True)
    node = _spawn(
        "tracker",
        ["tracker", "--port", str(port), "--data-dir", str(data_dir), *(extra or [])],
        data_dir,
        log_dir,
    )
    wait_for_info(node, "tracker.json")
    return node


def start_peer(
    data_dir: Path,
    tracker: str | None,
    token: str | None,
    port: int = 0,
    extra: list[str] | None = None,
    log_dir: Path | None = None,
    wait: bool = True,
) -> NodeProcess:
    args = ["peer", "--port", str(port), "--data-dir", str(data_dir)]
    if tracker:
        args += ["--tracker", tracker]
    if token:
        args += ["--join", token]
    node = _spawn("peer", args + (extra or []), data_dir, log_dir)
    if wait:
        wait_for_info(node, "api.json")
    return node


def start_dashboard(
    data_dir: Path,
    port: int = 0,
    host: str = "127.0.0.1",
    log_dir: Path | None = None,
    wait: bool = True,
) -> NodeProcess:
    """The web dashboard of the peer in ``data_dir``; ready once it wrote dashboard.json."""
    (data_dir / "dashboard.json").unlink(missing_ok=True)
    args = ["dashboard", "--data-dir", str(data_dir), "--port", str(port), "--host", host]
    node = _spawn("dashboard", args, data_dir, log_dir)
    if wait:
        wait_for_info(node, "dashboard.json")
    return node


def dashboard_login_url(node: NodeProcess) -> str:
    """The URL with the token that logs a browser in (as the dashboard prints it)."""
    token = (node.data_dir / "dashboard.token").read_text().strip()
    return f"{node.info['url']}?token={token}"


def stop(nodes: list[NodeProcess], timeout: float = 4.0) -> None:
    """SIGTERM every node, then SIGKILL whatever is still running after ``timeout``."""
    for node in nodes:
        if node.alive():
            with contextlib.suppress(ProcessLookupError):
                node.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for node in nodes:
        remaining = max(0.0, deadline - time.monotonic())
        try:
            node.proc.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGKILL)
            node.proc.wait()


@dataclass
class LocalCluster:
    """A tracker and N peers under one directory, as ``peeros up`` runs them."""

    data_dir: Path
    tracker: NodeProcess | None = None
    peers: list[NodeProcess] = field(default_factory=list)

    @property
    def tracker_address(self) -> str:
        assert self.tracker is not None
        return str(self.tracker.info["address"])

    def token(self) -> str:
        return (self.data_dir / "tracker" / "join-token").read_text().strip()

    def start(
        self,
        n_peers: int,
        tracker_port: int = 0,
        peer_extra: list[str] | None = None,
        tracker_extra: list[str] | None = None,
    ) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.tracker = start_tracker(self.data_dir / "tracker", tracker_port, tracker_extra)
            token = self.token()
            launched = [
                start_peer(
                    self.data_dir / f"peer-{i}",
                    self.tracker_address,
                    token,
                    extra=peer_extra,
                    wait=False,
                )
                for i in range(1, n_peers + 1)
            ]
            self.peers.extend(launched)
            for node in launched:
                wait_for_info(node, "api.json")
            self.write_manifest()
        except BaseException:
            self.stop()
            raise

    def manifest(self) -> dict[str, Any]:
        assert self.tracker is not None
        return {
            "tracker": {
                "address": self.tracker_address,
                "data_dir": str(self.tracker.data_dir),
                "pid": self.tracker.pid,
                "ca_fingerprint": self.tracker.info.get("ca_fingerprint"),
            },
            "peers": [
                {
                    "peer_id": p.info["peer_id"],
                    "address": p.info["address"],
                    "api_url": p.info["api_url"],
                    "data_dir": str(p.data_dir),
                    "pid": p.pid,
                }
                for p in self.peers
            ],
        }

    def write_manifest(self) -> None:
        write_json(self.data_dir / "cluster.json", self.manifest())

    def nodes(self) -> list[NodeProcess]:
        return [*self.peers, *([self.tracker] if self.tracker else [])]

    def stop(self, timeout: float = 4.0) -> None:
        # Peers first, so they can unregister from a tracker that is still up.
        stop(self.peers, timeout * 0.75)
        if self.tracker:
            stop([self.tracker], timeout * 0.25)
        (self.data_dir / "cluster.json").unlink(missing_ok=True)
