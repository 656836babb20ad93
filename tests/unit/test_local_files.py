"""The peer's file store and the streaming helpers, on a real temp directory."""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from peeros.errors import BadRequest, NotFound, PayloadTooLarge
from peeros.files.atomic import TooLarge
from peeros.files.local import LocalFiles, check_sha256
from peeros.files.transfer import CHUNK, coalesce, read_chunks, write_stream

PEER = "a" * 26


def store(tmp_path: Path, max_bytes: int = 1 << 20) -> LocalFiles:
    return LocalFiles(tmp_path / "files", max_bytes, PEER)


def put(s: LocalFiles, name: str, data: bytes, expected: str | None = None) -> None:
    w = s.begin(name, len(data))
    with w:
        w.write(data)
        s.publish(w, name, expected)


def test_put_open_list_delete(tmp_path: Path) -> None:
    s = store(tmp_path)
    put(s, "b", b"bee")
    put(s, "a", b"", hashlib.sha256(b"").hexdigest())
    assert [(f.name, f.size) for f in s.list()] == [("a", 0), ("b", 3)]
    fobj, info = s.open("b")
    with fobj:
        assert fobj.read() == b"bee"
    assert info.sha256 == hashlib.sha256(b"bee").hexdigest() and info.peer_id == PEER
    s.delete("b")
    with pytest.raises(NotFound, match=f"no file 'b' on peer {PEER}"):
        s.open("b")
    with pytest.raises(NotFound):
        s.delete("b")


def test_refusals_name_the_problem_and_leave_nothing(tmp_path: Path) -> None:
    s = store(tmp_path, max_bytes=10)
    with pytest.raises(BadRequest, match="bad file name: file name must not contain '/'"):
        s.begin("../x", 1)
    with pytest.raises(PayloadTooLarge, match="11 bytes over this peer's limit of 10 bytes"):
        s.begin("x", 11)
    w = s.begin("x", None)
    with pytest.raises(TooLarge):
        w.write(b"x" * 11)
    w = s.begin("x", 3)
    with w, pytest.raises(BadRequest, match="does not match its SHA-256"):
        w.write(b"abc")
        s.publish(w, "x", "0" * 64)
    assert os.listdir(s.root) == []


def test_a_restart_removes_partials_and_orphan_sidecars(tmp_path: Path) -> None:
    s = store(tmp_path)
    put(s, "keep", b"1")
    put(s, "gone", b"2")
    (s.root / "gone").unlink()
    (s.root / ".part-crashed").write_bytes(b"half")
    s = store(tmp_path)
    assert sorted(os.listdir(s.root)) == ["keep"]
    assert len(os.listdir(s.meta)) == 1


def test_a_stale_sidecar_is_never_trusted(tmp_path: Path) -> None:
    s = store(tmp_path)
    put(s, "f", b"old")
    (s.root / "f").write_bytes(b"new!")
    assert s.info("f").sha256 == hashlib.sha256(b"new!").hexdigest()
    (s.root / "hand-made").write_bytes(b"x")  # put there by hand: hashed on first sight
    assert s.info("hand-made").sha256 == hashlib.sha256(b"x").hexdigest()


def test_sha256_header_values() -> None:
    assert check_sha256(None) is None
    assert check_sha256("AB" * 32) == "ab" * 32
    for bad in ("", "ab", "g" * 64, "a" * 65):
        with pytest.raises(BadRequest, match="64 hex digits"):
            check_sha256(bad)


async def pieces(*parts: bytes) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


async def test_coalesce_regroups_into_chunks() -> None:
    small = [b"x" * 1000] * 2000
    out = [c async for c in coalesce(pieces(*small))]
    assert b"".join(out) == b"".join(small)
    assert all(len(c) >= CHUNK for c in out[:-1])


async def test_write_stream_waits_for_its_thread_before_failing() -> None:
    written: list[int] = []

    class Slow:
        def write(self, data: bytes) -> None:
            time.sleep(0.05)  # a slow disk, not a synchronisation
            written.append(len(data))

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * CHUNK
        yield b"y" * CHUNK
        raise ConnectionResetError("cut")

    with pytest.raises(ConnectionResetError):
        await write_stream(Slow(), broken())
    assert written == [CHUNK, CHUNK]  # the last write had finished when the error surfaced


async def test_read_chunks_reads_the_requested_span() -> None:
    data = os.urandom(3 * CHUNK + 5)
    got = [c async for c in read_chunks(io.BytesIO(data), 7, 2 * CHUNK)]
    assert b"".join(got) == data[7 : 7 + 2 * CHUNK]
    assert b"".join([c async for c in read_chunks(io.BytesIO(data))]) == data
