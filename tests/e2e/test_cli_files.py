"""The file commands as a user types them: real processes, output and exit codes."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from peeros import Client
from peeros.launcher import LocalCluster, NodeProcess
from tests.conftest import FAST_PEER, Nodes, wait_until
from tests.e2e.test_cli import peeros

MiB = 1 << 20


@dataclass
class Setup:
    cluster: LocalCluster
    small: NodeProcess
    tmp: Path

    @property
    def d(self) -> str:
        """--data-dir of the first peer."""
        return str(self.cluster.peers[0].data_dir)

    @property
    def other(self) -> NodeProcess:
        return self.cluster.peers[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("cli-files")
    nodes = Nodes(root)
    try:
        cluster = nodes.cluster(2)
        assert cluster.tracker is not None
        small = nodes.peer(cluster.tracker, "small", extra=[*FAST_PEER, "--max-file-mb", "1"])
        with Client(data_dir=cluster.peers[0].data_dir) as client:
            wait_until(lambda: small.info["peer_id"] in {p.peer_id for p in client.peers()})
        tmp = root / "work"
        tmp.mkdir()
        yield Setup(cluster, small, tmp)
    finally:
        nodes.stop_all()


def one_error_line(r: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    for needle in needles:
        assert needle in r.stderr, r.stderr


def test_put_list_get_rm_on_the_local_peer(setup: Setup) -> None:
    src = setup.tmp / "hello.txt"
    src.write_bytes(b"hello, peers\n" * 1000)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()

    r = peeros("put-file", "--filename", "hello.txt", "--filepath", str(src), "--data-dir", setup.d)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("stored 'hello.txt' on peer ") and digest in r.stdout
    assert r.stderr == ""  # no progress bar without a terminal

    r = peeros("files", "--data-dir", setup.d)
    assert r.returncode == 0 and "hello.txt" in r.stdout and digest in r.stdout
    assert "12.7 KiB" in r.stdout
    listed = json.loads(peeros("files", "--json", "--data-dir", setup.d).stdout)
    entry = next(f for f in listed if f["name"] == "hello.txt")
    assert entry["size"] == 13000 and entry["sha256"] == digest
    assert set(entry) == {"name", "size", "sha256", "modified", "peer_id"}

    out = setup.tmp / "out.txt"
    r = peeros("get-file", "--filename", "hello.txt", "--save", str(out), "--data-dir", setup.d)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == src.read_bytes() and "(verified)" in r.stdout

    r = peeros("rm-file", "--filename", "hello.txt", "--data-dir", setup.d)
    assert r.returncode == 0 and r.stdout.startswith("deleted 'hello.txt' from peer ")
    one_error_line(
        peeros("rm-file", "--filename", "hello.txt", "--data-dir", setup.d),
        "no file 'hello.txt' on peer",
    )
    assert not (setup.cluster.peers[0].data_dir / "files" / "hello.txt").exists()


def test_on_another_peer_by_id_and_by_address(setup: Setup) -> None:
    src = setup.tmp / "remote.bin"
    src.write_bytes(os.urandom(MiB + 3))
    peer_id, address = setup.other.info["peer_id"], setup.other.info["address"]
    r = peeros(
        "put-file",
        "--filename",
        "remote.bin",
        "--filepath",
        str(src),
        "--on",
        peer_id,
        "--json",
        "--data-dir",
        setup.d,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["peer_id"] == peer_id
    assert (setup.other.data_dir / "files" / "remote.bin").read_bytes() == src.read_bytes()

    r = peeros("files", "--on", address, "--json", "--data-dir", setup.d)
    assert [f["name"] for f in json.loads(r.stdout)] == ["remote.bin"]
    r = peeros(
        "get-file",
        "--filename",
        "remote.bin",
        "--save",
        str(setup.tmp),
        "--on",
        address,
        "--json",
        "--data-dir",
        setup.d,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["peer_id"] == peer_id
    assert (setup.tmp / "remote.bin").read_bytes() == src.read_bytes()  # a directory: saved inside
    r = peeros(
        "rm-file", "--filename", "remote.bin", "--on", peer_id, "--json", "--data-dir", setup.d
    )
    assert json.loads(r.stdout) == {"name": "remote.bin", "peer_id": peer_id}
    assert not (setup.other.data_dir / "files" / "remote.bin").exists()


def test_errors_are_one_clear_line_and_exit_1(setup: Setup) -> None:
    d = setup.d
    out = setup.tmp / "never"
    one_error_line(
        peeros("get-file", "--filename", "nope", "--save", str(out), "--data-dir", d),
        "no file 'nope' on peer",
    )
    assert not out.exists()
    absent = str(setup.tmp / "absent")
    one_error_line(
        peeros("put-file", "--filename", "x", "--filepath", absent, "--data-dir", d),
        "no local file",
    )
    big = setup.tmp / "big.bin"
    big.write_bytes(b"y" * (MiB + 1))
    one_error_line(
        peeros("put-file", "--filename", "../../etc/x", "--filepath", str(big), "--data-dir", d),
        "bad file name",
        "'/'",
    )
    one_error_line(
        peeros("files", "--on", "b" * 26, "--data-dir", d), "no peer bbbbbbbbbbbbbbbbbbbbbbbbbb"
    )
    small_id = setup.small.info["peer_id"]
    r = peeros(
        "put-file",
        "--filename",
        "big.bin",
        "--filepath",
        str(big),
        "--on",
        small_id,
        "--data-dir",
        d,
    )
    one_error_line(r, "file too large", "limit of 1048576 bytes")
    assert not (setup.small.data_dir / "files" / "big.bin").exists()


def test_several_filenames_fetch_them_all_into_a_directory_or_none(setup: Setup) -> None:
    d, peer_id = setup.d, setup.other.info["peer_id"]
    bodies = {f"many-{i}": os.urandom(i * 1000) for i in range(4)}
    for name, body in bodies.items():
        (setup.tmp / name).write_bytes(body)
        r = peeros(
            "put-file", "--filename", name, "--filepath", str(setup.tmp / name), "--on", peer_id,
            "--data-dir", d,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
    names = [arg for name in bodies for arg in ("--filename", name)]
    out = setup.tmp / "many-out"
    out.mkdir()
    r = peeros("get-file", *names, "--save", str(out), "--on", peer_id, "--data-dir", d)
    assert r.returncode == 0, r.stderr
    assert (
        r.stdout
        == f"saved 4 files from peer {peer_id} to {out}: 5.9 KiB in all, each SHA-256 verified\n"
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == bodies
    out_json = setup.tmp / "many-json"
    out_json.mkdir()
    r = peeros(
        "get-file", *names, "--save", str(out_json), "--on", peer_id, "--json", "--data-dir", d
    )
    assert r.returncode == 0, r.stderr
    assert [(f["name"], f["size"]) for f in json.loads(r.stdout)] == [
        (name, len(body)) for name, body in bodies.items()
    ]

    # bad input: one clear line, exit 1, nothing written
    empty = setup.tmp / "many-empty"
    empty.mkdir()
    for args, needle in (
        ([*names, "--filename", "nope"], "no file 'nope' on peer"),
        ([*names, "--filename", "many-1"], "given more than once: many-1"),
        ([*names, "--filename", "../x"], "'/'"),
    ):
        one_error_line(
            peeros("get-file", *args, "--save", str(empty), "--on", peer_id, "--data-dir", d),
            needle,
        )
        assert list(empty.iterdir()) == []
    not_a_dir = setup.tmp / "many-0"
    one_error_line(
        peeros("get-file", *names, "--save", str(not_a_dir), "--data-dir", d), "is not a directory"
    )
    assert not_a_dir.read_bytes() == bodies["many-0"]


def run_on_tty(*args: str) -> tuple[int, str, str]:
    """Run peeros with stderr on a pseudo-terminal; return (exit code, stdout, tty output)."""
    master, slave = pty.openpty()
    try:
        with subprocess.Popen(
            [sys.executable, "-m", "peeros", *args],
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
            env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
        ) as proc:
            os.close(slave)
            slave = -1
            chunks = []
            while True:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            stdout = proc.stdout.read() if proc.stdout else ""
            code = proc.wait(timeout=60)
        return code, stdout, b"".join(chunks).decode(errors="replace")
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


def test_progress_bars_on_a_terminal_only_without_json(setup: Setup) -> None:
    big = setup.tmp / "bar.bin"
    big.write_bytes(os.urandom(9 * MiB))
    d = setup.d
    code, out, tty = run_on_tty(
        "put-file", "--filename", "bar.bin", "--filepath", str(big), "--data-dir", d
    )
    assert code == 0 and out.startswith("stored 'bar.bin'")
    assert "sending" in tty and "9.0 MiB" in tty
    save = str(setup.tmp / "bar.out")
    code, out, tty = run_on_tty(
        "get-file", "--filename", "bar.bin", "--save", save, "--data-dir", d
    )
    assert code == 0 and "receiving" in tty
    code, out, tty = run_on_tty(
        "put-file", "--filename", "bar.bin", "--filepath", str(big), "--json", "--data-dir", d
    )
    assert code == 0 and json.loads(out)["size"] == 9 * MiB and tty == ""
