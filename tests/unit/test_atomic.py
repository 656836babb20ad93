"""Specification of crash-safe verified writes (peeros.files.atomic)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from peeros.files.atomic import AtomicWriter, HashMismatch, TooLarge
from peeros.files.names import PARTIAL_PREFIX

DATA = b"hello, peer\n" * 10_000


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_nothing_at_final_path_before_commit(tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    w = AtomicWriter(dest)
    w.write(DATA)
    assert not dest.exists()
    [partial] = os.listdir(tmp_path)
    assert partial.startswith(PARTIAL_PREFIX)
    digest = w.commit()
    assert digest == hashlib.sha256(DATA).hexdigest()
    assert dest.read_bytes() == DATA
    assert os.listdir(tmp_path) == ["f.bin"]
    assert w.size == len(DATA)


def test_commit_checks_expected_hash(tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    with AtomicWriter(dest) as w:
        for i in range(0, len(DATA), 7777):
            w.write(DATA[i : i + 7777])
        w.commit(hashlib.sha256(DATA).hexdigest().upper())
    assert dest.read_bytes() == DATA


def test_hash_mismatch_removes_temp_file(tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    w = AtomicWriter(dest)
    w.write(DATA)
    with pytest.raises(HashMismatch) as info:
        w.commit("0" * 64)
    assert info.value.actual == hashlib.sha256(DATA).hexdigest()
    assert os.listdir(tmp_path) == []


def test_abort_leaves_nothing(tmp_path: Path) -> None:
    w = AtomicWriter(tmp_path / "f.bin")
    w.write(DATA)
    w.abort()
    w.abort()  # idempotent
    assert os.listdir(tmp_path) == []
    with pytest.raises(RuntimeError):
        w.write(b"more")


def test_exception_in_block_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConnectionResetError), AtomicWriter(tmp_path / "f.bin") as w:
        w.write(DATA)
        raise ConnectionResetError("peer went away")
    assert os.listdir(tmp_path) == []


def test_leaving_block_without_commit_publishes_nothing(tmp_path: Path) -> None:
    with AtomicWriter(tmp_path / "f.bin") as w:
        w.write(DATA)
    assert os.listdir(tmp_path) == []


def test_existing_file_is_replaced_only_on_commit(tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"old")
    with AtomicWriter(dest) as w:
        w.write(b"new")
        assert dest.read_bytes() == b"old"
        w.commit()
    assert dest.read_bytes() == b"new"


def test_max_bytes_is_enforced_before_writing(tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    w = AtomicWriter(dest, max_bytes=10)
    w.write(b"12345")
    w.write(b"67890")  # exactly at the limit is fine
    with pytest.raises(TooLarge) as info:
        w.write(b"x")
    assert info.value.limit == 10
    assert os.listdir(tmp_path) == []  # the writer aborted itself


def test_max_bytes_allows_exact_size_commit(tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    with AtomicWriter(dest, max_bytes=len(DATA)) as w:
        w.write(DATA)
        w.commit()
    assert dest.stat().st_size == len(DATA)


def test_files_are_owner_only_by_default(tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    old = os.umask(0)
    try:
        w = AtomicWriter(dest)
        assert _mode(w.temp_path) == 0o600
        w.write(b"x")
        w.commit()
    finally:
        os.umask(old)
    assert _mode(dest) == 0o600


def test_mode_is_configurable(tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    with AtomicWriter(dest, mode=0o644) as w:
        w.write(b"x")
        w.commit()
    assert _mode(dest) == 0o644


def test_commit_twice_is_refused(tmp_path: Path) -> None:
    w = AtomicWriter(tmp_path / "f.bin")
    w.commit()
    with pytest.raises(RuntimeError):
        w.commit()
    assert (tmp_path / "f.bin").read_bytes() == b""


def test_a_writer_without_hash_publishes_but_cannot_verify(tmp_path: Path) -> None:
    dest = tmp_path / "blob"
    with AtomicWriter(dest, sha256=False) as w:
        w.write(DATA)
        with pytest.raises(ValueError, match="does not hash"):
            w.commit(hashlib.sha256(DATA).hexdigest())
        assert not dest.exists()
        assert w.commit() == ""
    assert dest.read_bytes() == DATA
    assert os.listdir(tmp_path) == ["blob"]
