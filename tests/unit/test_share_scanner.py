"""The shared-folder scanner: identities, the hash cache, changes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from peeros.share.scanner import Scanner, hash_chunks


def test_hash_chunks_matches_hashlib(tmp_path: Path) -> None:
    data = os.urandom(10_000)
    (tmp_path / "f").write_bytes(data)
    whole, size, chunks = hash_chunks(tmp_path / "f", 4096)
    assert whole == hashlib.sha256(data).hexdigest() and size == 10_000
    assert chunks == tuple(
        hashlib.sha256(data[i : i + 4096]).hexdigest() for i in range(0, 10_000, 4096)
    )
    (tmp_path / "e").write_bytes(b"")
    assert hash_chunks(tmp_path / "e", 4096) == (hashlib.sha256(b"").hexdigest(), 0, ())
    (tmp_path / "x").write_bytes(b"y" * 8192)
    assert len(hash_chunks(tmp_path / "x", 4096)[2]) == 2


def test_unchanged_files_are_not_read_again(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a")
    (tmp_path / "b").write_bytes(b"bb")
    scanner = Scanner(tmp_path, 4)
    first = scanner.scan()
    assert first.added == ["a", "b"] and scanner.files_read == 2
    second = scanner.scan()
    assert not second.changes and scanner.files_read == 2
    assert second.entries["b"].size == 2
    assert second.entries["b"].sha256 == hashlib.sha256(b"bb").hexdigest()


def test_added_changed_removed(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a")
    (tmp_path / "b").write_bytes(b"b")
    scanner = Scanner(tmp_path, 4)
    scanner.scan()
    (tmp_path / "a").write_bytes(b"a changed")
    (tmp_path / "b").unlink()
    (tmp_path / "c").write_bytes(b"c")
    r = scanner.scan()
    assert (r.added, r.changed, r.removed) == (["c"], ["a"], ["b"])
    assert scanner.files_read == 4
    # touching a file without changing it re-reads it, but it is not "changed"
    st = (tmp_path / "c").stat()
    os.utime(tmp_path / "c", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    r = scanner.scan()
    assert not r.changes and scanner.files_read == 5


def test_hidden_files_and_directories_are_skipped(tmp_path: Path) -> None:
    (tmp_path / ".x.peeros-partial").write_bytes(b"partial")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f").write_bytes(b"f")
    (tmp_path / "ok").write_bytes(b"ok")
    assert list(Scanner(tmp_path).scan().entries) == ["ok"]
    assert Scanner(tmp_path / "missing").scan().entries == {}


def test_the_cache_survives_a_restart(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a" * 10)
    (tmp_path / "b").write_bytes(b"b")
    before = Scanner(tmp_path, 4)
    before.scan()
    after = Scanner(tmp_path, 4)
    after.load([*before.dump(), {"name": "broken"}])
    (tmp_path / "b").write_bytes(b"bb")
    r = after.scan()
    assert after.files_read == 1 and r.changed == ["b"] and r.removed == []
    assert after.entries["a"] == before.entries["a"]
