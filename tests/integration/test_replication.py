"""The coordinator keeps every shared file on 2 live peers, and again after a holder dies."""

from __future__ import annotations

import hashlib
import os

from peeros.client import Client
from peeros.client_share import Share
from tests.conftest import FAST_PEER, FAST_TRACKER, Nodes, wait_until


def copies(s: Share, name: str) -> set[str]:
    return {h.peer_id for hit in s.lookup(name).hits for h in hit.holders}


def test_replication_and_re_replication_after_kill9(nodes: Nodes) -> None:
    tracker = nodes.tracker(extra=[*FAST_TRACKER, "--share-replicas", "2"])
    peers, folders = [], []
    for i in range(3):
        folder = nodes.root / f"s{i}" / "shared"
        folder.mkdir(parents=True)
        folders.append(folder)
        extra = [*FAST_PEER, "--rescan-interval", "300", "--share", str(folder), "--slots", "1"]
        peers.append(nodes.peer(tracker, f"p{i}", extra=extra))
    data = os.urandom(3 << 20)
    (folders[0] / "precious.bin").write_bytes(data)
    with Client(data_dir=peers[0].data_dir) as c0:
        s0 = Share(c0)
        s0.rescan()
        # one more copy appears, in another peer's replicated/ folder
        first = wait_until(
            lambda: copies(s0, "precious.bin") if len(copies(s0, "precious.bin")) == 2 else None
        )
        ids = {p.info["peer_id"]: p for p in peers}
        (copy_id,) = first - {peers[0].info["peer_id"]}
        replica = ids[copy_id].data_dir.parent / f"s{peers.index(ids[copy_id])}" / "replicated"
        assert (
            hashlib.sha256((replica / "precious.bin").read_bytes()).digest()
            == hashlib.sha256(data).digest()
        )
        assert copies(s0, "precious.bin") == first  # and no third copy is made

    # kill -9 the peer with the replica: the third peer gets a new copy
    nodes.kill9(ids[copy_id])
    (third,) = [p for p in peers if p.info["peer_id"] not in first]
    with Client(data_dir=peers[0].data_dir) as c0:
        want = {peers[0].info["peer_id"], third.info["peer_id"]}
        wait_until(lambda: copies(Share(c0), "precious.bin") == want, timeout=20)
    third_dir = folders[peers.index(third)].parent / "replicated" / "precious.bin"
    assert third_dir.read_bytes() == data
