"""The multi-source downloader against in-memory holders (no sockets)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path

import pytest

from peeros.errors import Unavailable
from peeros.protocol import ChunkList, ShareHolder
from peeros.share.download import agree_on_chunks, download, partial_paths

CHUNK = 1000


class Holders:
    """Holders serving ``data``; some may serve corrupted bytes or be unreachable."""

    def __init__(
        self,
        data: bytes,
        bad: set[str] = frozenset(),
        dead: set[str] = frozenset(),
        size_lie: dict[str, int] | None = None,
    ) -> None:
        self.data = data
        self.bad, self.dead = set(bad), set(dead)
        self.size_lie = size_lie or {}
        self.served: dict[str, int] = {}
        self.sha = hashlib.sha256(data).hexdigest()

    async def chunk_list(self, address: str, sha256: str) -> ChunkList:
        size = self.size_lie.get(address, len(self.data))
        chunks = [
            hashlib.sha256(self.data[i : i + CHUNK]).hexdigest()
            for i in range(0, len(self.data), CHUNK)
        ]
        return ChunkList(sha256=sha256, size=size, chunk_size=CHUNK, chunks=chunks)

    async def fetch(self, address: str, sha256: str, start: int, count: int) -> bytes:
        await asyncio.sleep(0)
        if address in self.dead:
            raise Unavailable(f"cannot reach {address}")
        self.served[address] = self.served.get(address, 0) + count
        piece = self.data[start : start + count]
        return b"\x00" * count if address in self.bad else piece


def holders(*names: str) -> list[ShareHolder]:
    return [ShareHolder(peer_id=n, address=n) for n in names]


async def fetch_all(h: Holders, names: list[str], dest: Path) -> tuple[int, int, int]:
    cl, agreed = await agree_on_chunks(h, holders(*names), h.sha, len(h.data))
    out = await download(h, agreed, cl, dest)
    return out.bytes_fetched, out.resumed_bytes, out.chunks_refetched


def test_chunks_come_from_every_holder(tmp_path: Path) -> None:
    h = Holders(os.urandom(20 * CHUNK + 5))
    fetched, resumed, refetched = asyncio.run(fetch_all(h, ["a", "b", "c"], tmp_path / "f"))
    assert (tmp_path / "f").read_bytes() == h.data
    assert fetched == len(h.data) and resumed == 0 and refetched == 0
    assert set(h.served) == {"a", "b", "c"}
    assert not partial_paths(tmp_path / "f")[1].exists()


def test_a_corrupting_holder_is_worked_around(tmp_path: Path) -> None:
    h = Holders(os.urandom(10 * CHUNK), bad={"b"})
    _fetched, _resumed, refetched = asyncio.run(fetch_all(h, ["a", "b"], tmp_path / "f"))
    assert refetched >= 1 and (tmp_path / "f").read_bytes() == h.data


def test_a_dead_holder_is_worked_around(tmp_path: Path) -> None:
    h = Holders(os.urandom(10 * CHUNK), dead={"b"})
    asyncio.run(fetch_all(h, ["a", "b"], tmp_path / "f"))
    assert (tmp_path / "f").read_bytes() == h.data


def test_no_honest_holder_fails_and_keeps_progress(tmp_path: Path) -> None:
    h = Holders(os.urandom(10 * CHUNK), bad={"a"})
    with pytest.raises(Unavailable, match="could not be fetched intact"):
        asyncio.run(fetch_all(h, ["a"], tmp_path / "f"))
    assert not (tmp_path / "f").exists()


def test_resume_fetches_only_what_is_missing(tmp_path: Path) -> None:
    h = Holders(os.urandom(10 * CHUNK))
    dest = tmp_path / "f"
    partial, progress = partial_paths(dest)
    partial.write_bytes(h.data[: 6 * CHUNK] + b"\x00" * (4 * CHUNK))
    progress.write_text(
        json.dumps(
            {
                "version": 1,
                "sha256": h.sha,
                "size": len(h.data),
                "chunk_size": CHUNK,
                "done": [0, 1, 2, 3, 4, 5],
            }
        )
    )
    fetched, resumed, _ = asyncio.run(fetch_all(h, ["a"], dest))
    assert resumed == 6 * CHUNK and fetched == 4 * CHUNK
    assert dest.read_bytes() == h.data


def test_a_holder_that_lies_about_size_is_dropped(tmp_path: Path) -> None:
    h = Holders(os.urandom(3 * CHUNK), size_lie={"b": 5})
    cl, agreed = asyncio.run(agree_on_chunks(h, holders("a", "b"), h.sha, len(h.data)))
    assert [x.peer_id for x in agreed] == ["a"] and cl.size == len(h.data)
    with pytest.raises(Unavailable, match="reports 5 bytes"):
        asyncio.run(agree_on_chunks(h, holders("b"), h.sha, len(h.data)))
