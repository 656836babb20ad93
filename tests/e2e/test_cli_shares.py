"""The sharing commands as a user types them: real processes, output and exit codes."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import FAST_PEER, FAST_TRACKER, Nodes, wait_until
from tests.e2e.test_cli import peeros
from tests.e2e.test_cli_files import one_error_line


@dataclass
class Setup:
    dirs: list[str]
    shared: list[Path]
    root: Path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("cli-shares")
    nodes = Nodes(root)
    try:
        tracker = nodes.tracker(extra=[*FAST_TRACKER, "--share-replicas", "1"])
        dirs, shared = [], []
        for i in range(2):
            folder = root / f"s{i}" / "shared"
            folder.mkdir(parents=True)
            extra = [*FAST_PEER, "--slots", "1", "--share", str(folder)]
            dirs.append(str(nodes.peer(tracker, f"p{i}", extra=extra).data_dir))
            shared.append(folder)
        yield Setup(dirs, shared, root)
    finally:
        nodes.stop_all()


def test_rescan_list_lookup_download_stats(setup: Setup) -> None:
    data = os.urandom(300_000)
    (setup.shared[0] / "Report-2026.pdf").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    r = peeros("share", "rescan", "--data-dir", setup.dirs[0])
    assert r.returncode == 0 and r.stdout.startswith("1 added, 0 changed, 0 removed"), r.stderr
    listed = json.loads(peeros("list", "local", "--json", "--data-dir", setup.dirs[0]).stdout)
    assert listed == [
        {"name": "Report-2026.pdf", "size": 300_000, "sha256": digest, "kind": "local"}
    ]

    def lookup(*args: str) -> list[dict[str, object]]:
        r = peeros("lookup", *args, "--json", "--data-dir", setup.dirs[1])
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)  # type: ignore[no-any-return]

    wait_until(lambda: lookup("Report-2026.pdf"))
    (hit,) = lookup("report", "--substring")
    assert {k: hit[k] for k in ("name", "size", "sha256")} == {
        "name": "Report-2026.pdf",
        "size": 300_000,
        "sha256": digest,
    }
    holder_id = json.loads((Path(setup.dirs[0]) / "api.json").read_text())["peer_id"]
    holders = hit["holders"]
    assert isinstance(holders, list) and [h["peer_id"] for h in holders] == [holder_id]
    assert [h["name"] for h in lookup("Report-*.pdf", "--glob")] == ["Report-2026.pdf"]
    assert lookup("report-2026.pdf") == []
    r = peeros("lookup", "report", "--substring", "--data-dir", setup.dirs[1])
    assert r.returncode == 0 and "Report-2026.pdf" in r.stdout

    r = peeros("download", "Report-2026.pdf", "--data-dir", setup.dirs[1])
    assert r.returncode == 0, r.stderr
    assert "verified" in r.stdout and "from 1 holder(s)" in r.stdout
    out = setup.root / "s1" / "downloaded" / "Report-2026.pdf"
    assert out.read_bytes() == data
    r = peeros(
        "download", "--hash", digest, "--save", "copy.pdf", "--json", "--data-dir", setup.dirs[1]
    )
    got = json.loads(r.stdout)
    assert got["name"] == "copy.pdf" and got["sha256"] == digest and got["size"] == 300_000
    names = [
        f["name"]
        for f in json.loads(
            peeros("list", "downloaded", "--json", "--data-dir", setup.dirs[1]).stdout
        )
    ]
    assert names == ["Report-2026.pdf", "copy.pdf"]

    stats = json.loads(peeros("stats", "--json", "--data-dir", setup.dirs[1]).stdout)
    assert stats["search_seconds"]["count"] >= 4 and stats["download_mbps"]["count"] == 2
    assert set(stats["search_seconds"]) == {"count", "mean", "stdev", "min", "max"}
    r = peeros("stats", "--data-dir", setup.dirs[1])
    assert (
        "search time: n=" in r.stdout
        and "download speed: n=2" in r.stdout
        and "throughput" in r.stdout
    )


def test_errors_are_one_clear_line(setup: Setup) -> None:
    one_error_line(peeros("download", "nothing.bin", "--data-dir", setup.dirs[1]), "no live peer")
    one_error_line(peeros("download", "--hash", "zz", "--data-dir", setup.dirs[1]), "sha256")
    one_error_line(peeros("lookup", "", "--data-dir", setup.dirs[1]), "empty")
    one_error_line(peeros("lookup", "x" * 300, "--data-dir", setup.dirs[1]), "255")
    one_error_line(peeros("search", "x", "--data-dir", setup.dirs[1]), "no live neighbours")
    one_error_line(peeros("search", "x", "--ttl", "99", "--data-dir", setup.dirs[1]), "ttl")
    r = peeros("download", "--data-dir", setup.dirs[1])
    assert r.returncode == 2 and "NAME or --hash" in r.stderr
    r = peeros("list", "elsewhere", "--data-dir", setup.dirs[1])
    assert r.returncode == 2


def test_ca_init_and_issue(tmp_path: Path) -> None:
    r = peeros("ca", "init", "--dir", str(tmp_path / "ca"))
    assert r.returncode == 0 and r.stdout.startswith("CA "), r.stderr
    r = peeros("ca", "issue", "--ca", str(tmp_path / "ca"), "--out", str(tmp_path / "node"))
    assert r.returncode == 0 and r.stdout.startswith("peer "), r.stderr
    assert {p.name for p in (tmp_path / "node").iterdir()} >= {"node.key", "node.crt", "ca.crt"}
    one_error_line(
        peeros("ca", "issue", "--ca", str(tmp_path / "none"), "--out", str(tmp_path / "n2")),
        "ca init",
    )
