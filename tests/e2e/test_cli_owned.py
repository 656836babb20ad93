"""``peeros owned ...`` as a user types it: real processes, output and exit codes."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from peeros.launcher import LocalCluster
from tests.conftest import Nodes
from tests.e2e.test_cli import peeros
from tests.e2e.test_cli_files import one_error_line


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    nodes = Nodes(tmp_path_factory.mktemp("cli-owned"))
    try:
        yield nodes.cluster(3)
    finally:
        nodes.stop_all()


def test_upload_list_download_delete(cluster: LocalCluster, tmp_path: Path) -> None:
    d = str(cluster.peers[0].data_dir)
    src = tmp_path / "notes.txt"
    src.write_bytes(os.urandom(300_000))
    digest = hashlib.sha256(src.read_bytes()).hexdigest()

    r = peeros("owned", "upload", str(src), "--name", "notes", "--data-dir", d)
    assert r.returncode == 0, r.stderr
    assert "stored 'notes'" in r.stdout and "encrypted on" in r.stdout

    r = peeros("owned", "list", "--json", "--data-dir", d)
    assert r.returncode == 0, r.stderr
    [entry] = json.loads(r.stdout)
    assert entry["name"] == "notes" and entry["size"] == 300_000 and len(entry["holders"]) == 2
    assert {"created", "owner_id"} <= entry.keys()

    r = peeros("owned", "list", "--refresh", "--data-dir", d)
    assert r.returncode == 0 and "notes" in r.stdout and "holders" in r.stdout

    out = tmp_path / "out.txt"
    r = peeros("owned", "download", "notes", "--save", str(out), "--data-dir", d)
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest and "verified" in r.stdout

    r = peeros("owned", "delete", "notes", "--data-dir", d)
    assert r.returncode == 0 and "from 2 holder(s)" in r.stdout, r.stderr
    assert json.loads(peeros("owned", "list", "--json", "--data-dir", d).stdout) == []


def test_errors_are_one_line_with_a_non_zero_exit(cluster: LocalCluster, tmp_path: Path) -> None:
    d = str(cluster.peers[0].data_dir)
    one_error_line(peeros("owned", "upload", str(tmp_path / "nope"), "--data-dir", d), "no local")
    one_error_line(
        peeros("owned", "download", "missing", "--save", str(tmp_path / "x"), "--data-dir", d),
        "no owned file",
    )
    assert not (tmp_path / "x").exists()
    one_error_line(peeros("owned", "delete", "missing", "--data-dir", d), "no owned file")
    src = tmp_path / "f"
    src.write_bytes(b"x")
    one_error_line(
        peeros("owned", "upload", str(src), "--replicas", "3", "--data-dir", d), "live peers"
    )
    one_error_line(
        peeros("owned", "upload", str(src), "--name", "../evil", "--data-dir", d), "bad file name"
    )
