"""The CLI as a user runs it: real subprocesses, real output, real exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Nodes, wait_until


def peeros(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "peeros", *args], capture_output=True, text=True, timeout=timeout
    )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); read its state
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def up(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, Path]]:
    data_dir = tmp_path / "cluster"
    out_path = tmp_path / "up.out"
    with open(out_path, "w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "peeros",
                "up",
                "--peers",
                "3",
                "--data-dir",
                str(data_dir),
                "--heartbeat-interval",
                "0.5",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    try:
        yield proc, data_dir, out_path
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        manifest = data_dir / "cluster.json"
        if manifest.exists():  # the launcher died without cleaning up: do it here
            for node in json.loads(manifest.read_text())["peers"]:
                if pid_alive(node["pid"]):
                    os.kill(node["pid"], signal.SIGKILL)


def test_up_starts_three_live_peers_and_ctrl_c_stops_everything(
    up: tuple[subprocess.Popen[str], Path, Path],
) -> None:
    proc, data_dir, out_path = up
    t0 = time.monotonic()
    wait_until(lambda: "Ctrl-C to stop" in out_path.read_text(), timeout=30)
    output = out_path.read_text()
    manifest = json.loads((data_dir / "cluster.json").read_text())
    assert f"tracker   {manifest['tracker']['address']}" in output
    for p in manifest["peers"]:
        assert p["peer_id"] in output and p["address"] in output and p["api_url"] in output

    def three_alive() -> bool:
        r = peeros("peers", "--json", "--data-dir", str(data_dir))
        return r.returncode == 0 and sum(p["alive"] for p in json.loads(r.stdout)) == 3

    wait_until(three_alive, timeout=15)
    assert time.monotonic() - t0 < 30
    listed = json.loads(peeros("peers", "--json", "--data-dir", str(data_dir)).stdout)
    assert {"peer_id", "address", "alive", "load", "last_heartbeat"} <= set(listed[0])

    pids = [proc.pid, manifest["tracker"]["pid"], *(p["pid"] for p in manifest["peers"])]
    proc.send_signal(signal.SIGINT)
    stopped = time.monotonic()
    wait_until(
        lambda: not any(pid_alive(pid) for pid in pids[1:]) and proc.poll() is not None, timeout=5
    )
    assert time.monotonic() - stopped < 5
    assert proc.returncode == 0


def test_status_token_and_peers_commands(nodes: Nodes) -> None:
    cluster = nodes.cluster(1)
    peer_dir = cluster.peers[0].data_dir
    r = peeros("status", "--json", "--data-dir", str(peer_dir))
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["peer_id"] == cluster.peers[0].info["peer_id"]
    assert st["tracker"] == cluster.tracker_address
    human = peeros("status", "--data-dir", str(peer_dir))
    assert human.returncode == 0 and st["peer_id"] in human.stdout and "local API" in human.stdout

    r = peeros("token", "--data-dir", str(cluster.data_dir / "tracker"))
    assert r.stdout.strip() == cluster.token()

    # --peer URL --token T reaches the same peer; PEEROS_DATA_DIR is honoured too
    token = (peer_dir / "api.token").read_text().strip()
    r = peeros("status", "--json", "--peer", st["api_url"], "--token", token)
    assert json.loads(r.stdout)["peer_id"] == st["peer_id"]
    env = {**os.environ, "PEEROS_DATA_DIR": str(peer_dir)}
    r2 = subprocess.run(
        [sys.executable, "-m", "peeros", "status", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert json.loads(r2.stdout)["peer_id"] == st["peer_id"]
    table = peeros("peers", "--data-dir", str(cluster.data_dir))
    assert table.returncode == 0 and st["peer_id"] in table.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["status", "--data-dir", "{tmp}/nothing"], 1, "no running peer found"),
        (["peers", "--peer", "127.0.0.1:9"], 1, "--token is required with --peer"),
        (
            ["peers", "--peer", "127.0.0.1:1", "--token", "t"],
            1,
            "cannot reach the peer's local API",
        ),
        (["token", "--data-dir", "{tmp}/nothing"], 1, "no join token"),
        (["tracker", "--port", "70000"], 2, "is not a port"),
        (["peer", "--join", "garbage", "--tracker", "127.0.0.1:1"], 1, "join token is malformed"),
        (["peer", "--data-dir", "{tmp}/fresh", "--port", "0"], 1, "the first start needs"),
        (["peer", "--heartbeat-interval", "-1"], 2, "must be > 0"),
        (["up", "--peers", "0"], 2, "0"),
        (["no-such-command"], 2, "No such command"),
    ],
)
def test_bad_commands_print_one_clear_line_and_exit_non_zero(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    r = peeros(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert r.returncode == code, r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "fresh" / "node.crt").exists()


def test_a_wrong_local_token_is_refused(nodes: Nodes) -> None:
    cluster = nodes.cluster(1)
    r = peeros("status", "--peer", cluster.peers[0].info["api_url"], "--token", "nope")
    assert r.returncode == 1
    assert r.stderr.strip() == "error: wrong API token"
