"""Index-mode sharing with real peers: lookup, verified multi-source downloads, rescans,
corrupted chunks, resumed downloads, bad input."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from peeros.client import Client
from peeros.client_share import Share
from peeros.errors import BadRequest, NotFound, Unavailable
from peeros.launcher import NodeProcess
from peeros.protocol import SharedFile, ShareIndex
from tests.conftest import FAST_PEER, FAST_TRACKER, Nodes, member_client, wait_until

CHUNK = 256 << 10
#: a long rescan interval: these tests rescan on purpose, never by the clock
SLOW_RESCAN = ["--rescan-interval", "300"]


@dataclass
class Cluster:
    root: Path
    peers: list[NodeProcess]
    shared: list[Path]
    clients: list[Client]

    def share(self, i: int) -> Share:
        return Share(self.clients[i])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A tracker and 3 peers (their chunks are small), shared by the tests of this module;
    each test uses its own file names."""
    root = tmp_path_factory.mktemp("shares")
    nodes = Nodes(root)
    old = os.environ.get("PEEROS_SHARE_CHUNK_BYTES")
    os.environ["PEEROS_SHARE_CHUNK_BYTES"] = str(CHUNK)
    clients: list[Client] = []
    try:
        # no replication here: each test knows exactly who holds what
        tracker = nodes.tracker(extra=[*FAST_TRACKER, "--share-replicas", "1"])
        peers, shared = [], []
        for i in range(3):
            folder = root / f"share-{i}" / "shared"
            folder.mkdir(parents=True)
            shared.append(folder)
            extra = [*FAST_PEER, *SLOW_RESCAN, "--share", str(folder), "--slots", "1"]
            peers.append(nodes.peer(tracker, f"p{i}", extra=extra))
        clients = [Client(data_dir=p.data_dir) for p in peers]
        yield Cluster(root, peers, shared, clients)
    finally:
        for c in clients:
            c.close()
        nodes.stop_all()
        if old is None:
            del os.environ["PEEROS_SHARE_CHUNK_BYTES"]
        else:
            os.environ["PEEROS_SHARE_CHUNK_BYTES"] = old


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def holders(share: Share, query: str, mode: str = "exact") -> int:
    hits = share.lookup(query, mode).hits
    return sum(len(h.holders) for h in hits)


def test_lookup_download_list_and_stats(cluster: Cluster) -> None:
    shared = cluster.shared
    (shared[0] / "song-one.mp3").write_bytes(os.urandom(CHUNK * 5 + 17))
    (shared[1] / "song-one.mp3").write_bytes((shared[0] / "song-one.mp3").read_bytes())
    (shared[1] / "notes.txt").write_bytes(b"hello\n")
    cluster.share(0).rescan()
    cluster.share(1).rescan()
    s = cluster.share(2)
    wait_until(lambda: holders(s, "song-one.mp3") == 2)
    assert [h.name for h in s.lookup("song", "substring").hits] == ["song-one.mp3"]
    assert [h.name for h in s.lookup("SONG-o", "substring").hits] == ["song-one.mp3"]
    assert [h.name for h in s.lookup("note?.t*", "glob").hits] == ["notes.txt"]
    assert s.lookup("song", "exact").hits == []
    hit = s.lookup("song-one.mp3").hits[0]
    assert hit.sha256 == sha(shared[0] / "song-one.mp3") and hit.size == CHUNK * 5 + 17
    ids = [p.info["peer_id"] for p in cluster.peers]
    assert {h.peer_id for h in hit.holders} == set(ids[:2])
    assert s.lookup(sha256=hit.sha256).hits == [hit]

    got = s.download("song-one.mp3")
    assert got.sha256 == hit.sha256 and sorted(got.sources) == sorted(ids[:2])
    assert got.bytes_fetched == hit.size and got.resumed_bytes == 0
    out = Path(got.path)
    assert out.parent.name == "downloaded" and sha(out) == hit.sha256
    assert "song-one.mp3" in [f.name for f in s.list("downloaded").files]
    assert "notes.txt" in [f.name for f in cluster.share(1).list("local").files]
    # the downloaded copy is shared in turn
    wait_until(lambda: holders(s, "song-one.mp3") == 3)

    stats = s.stats()
    assert stats.search_seconds.count >= 7 and stats.search_seconds.min > 0
    assert stats.search_seconds.max >= stats.search_seconds.mean >= stats.search_seconds.min
    assert stats.download_mbps.count >= 1 and stats.throughput_mbps > 0
    record = next(d for d in stats.downloads if d["name"] == "song-one.mp3")
    assert record["bytes"] == hit.size and record["sources"] == 2
    assert {q["mode"] for q in stats.queries} >= {"exact", "substring", "glob", "sha256"}


def test_rescan_notices_added_changed_and_removed(cluster: Cluster) -> None:
    folder, s = cluster.shared[2], cluster.share(2)
    read0 = s.rescan().files_read
    (folder / "r-a.txt").write_text("a")
    (folder / "r-b.txt").write_text("b")
    first = s.rescan()
    assert first.added == ["r-a.txt", "r-b.txt"] and first.files_read == read0 + 2
    again = s.rescan()
    assert (again.added, again.changed, again.removed) == ([], [], [])
    assert again.files_read == read0 + 2  # unchanged files are not read again
    (folder / "r-a.txt").write_text("a, longer")
    (folder / "r-b.txt").unlink()
    (folder / "r-c.txt").write_text("c")
    r = s.rescan()
    assert (r.added, r.changed, r.removed) == (["r-c.txt"], ["r-a.txt"], ["r-b.txt"])
    wait_until(lambda: {h.name for h in s.lookup("r-*.txt", "glob").hits} == {"r-a.txt", "r-c.txt"})
    names = {h.name: h for h in s.lookup("r-*.txt", "glob").hits}
    assert names["r-a.txt"].size == len("a, longer")


def test_corrupted_chunks_are_fetched_again_from_another_holder(cluster: Cluster) -> None:
    data = os.urandom(CHUNK * 8)
    for folder in cluster.shared[:2]:
        (folder / "big.bin").write_bytes(data)
    cluster.share(0).rescan()
    cluster.share(1).rescan()
    # bit rot on the second holder after indexing: same size and mtime, so no rescan sees it
    bad = cluster.shared[1] / "big.bin"
    st = bad.stat()
    with bad.open("r+b") as f:
        for i in range(8):
            f.seek(i * CHUNK + 100)
            f.write(b"\xff\x00\xff")
    os.utime(bad, ns=(st.st_atime_ns, st.st_mtime_ns))
    s = cluster.share(2)
    wait_until(lambda: holders(s, "big.bin") == 2)
    got = s.download("big.bin")
    assert got.chunks_refetched >= 1
    assert Path(got.path).read_bytes() == data


def test_interrupted_download_resumes(cluster: Cluster) -> None:
    size = 96 << 20
    src = cluster.shared[0] / "huge.bin"
    with src.open("wb") as f:
        for _ in range(size >> 20):
            f.write(os.urandom(1 << 20))
    cluster.share(0).rescan()
    s = cluster.share(2)
    wait_until(lambda: holders(s, "huge.bin") == 1)
    progress = cluster.shared[2].parent / "downloaded" / ".huge.bin.peeros-partial.json"
    data_dir = str(cluster.peers[2].data_dir)
    cmd = [sys.executable, "-m", "peeros", "download", "huge.bin", "--json"]
    proc = subprocess.Popen([*cmd, "--data-dir", data_dir], stdout=subprocess.DEVNULL)
    try:
        wait_until(lambda: len(json.loads(progress.read_text())["done"]) >= 8, interval=0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done_before = len(json.loads(progress.read_text())["done"])
    assert done_before < size // CHUNK  # really cut off mid-way
    got = s.download("huge.bin")
    assert got.resumed_bytes >= done_before * CHUNK
    assert got.bytes_fetched < size - got.resumed_bytes + 2 * CHUNK
    assert sha(Path(got.path)) == sha(src)
    assert not progress.exists()


def test_bad_input_is_refused_clearly(cluster: Cluster) -> None:
    (cluster.shared[0] / "real.bin").write_bytes(b"x" * 1000)
    cluster.share(0).rescan()
    s = cluster.share(1)
    wait_until(lambda: holders(s, "real.bin") == 1)
    with pytest.raises(BadRequest, match="empty"):
        s.lookup("  ")
    with pytest.raises(BadRequest, match="255"):
        s.lookup("x" * 256)
    with pytest.raises(BadRequest, match="sha256"):
        s.lookup(sha256="not-a-hash")
    with pytest.raises(BadRequest, match="mode"):
        s.lookup("x", "regex")
    with pytest.raises(NotFound, match="no live peer"):
        s.download(sha256="0" * 64)
    with pytest.raises(NotFound, match="no live peer"):
        s.download("missing.bin")
    with pytest.raises(BadRequest, match="name or a hash"):
        s.download()

    # a holder that lies about the size: its index entry says 5000 bytes
    real = s.lookup("real.bin").hits[0]
    lie = ShareIndex(files=[SharedFile(name="real.bin", size=5000, sha256=real.sha256)])
    holder = cluster.peers[0]

    async def report(index: ShareIndex) -> None:
        client = member_client(holder.data_dir)
        try:
            await client.request(holder.info["tracker"], "POST", "/v1/share/index", index)
        finally:
            await client.close()

    asyncio.run(report(lie))
    try:
        with pytest.raises(Unavailable, match="reports 1000 bytes"):
            s.download("real.bin")
    finally:  # the holder's honest list again
        (cluster.shared[0] / "real-2.bin").write_bytes(b"y")
        cluster.share(0).rescan()
        wait_until(lambda: holders(s, "real-2.bin") == 1)
