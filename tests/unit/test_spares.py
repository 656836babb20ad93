"""Unnamed files made ahead for downloads (``peeros.files.spares``), on the real disk."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from peeros.files import spares
from peeros.files.saving import SaveFile
from tests.conftest import wait_until

pytestmark = pytest.mark.skipif(not spares.SPARES.enabled, reason="no O_TMPFILE here")


@pytest.fixture
def pool() -> Iterator[spares.Spares]:
    made = spares.Spares()
    yield made
    made.close()


def test_spares_have_no_name_until_linked_in_and_more_are_made_ahead(
    pool: spares.Spares, tmp_path: Path
) -> None:
    fd = pool.take(tmp_path)
    assert fd is not None
    os.write(fd, b"whole")
    assert list(tmp_path.iterdir()) == []  # nothing visible while it is written
    spares.link_into(fd, tmp_path / "f")
    os.close(fd)
    assert (tmp_path / "f").read_bytes() == b"whole"
    assert oct((tmp_path / "f").stat().st_mode & 0o777) == "0o644"
    wait_until(lambda: len(pool._ready.get(str(tmp_path), [])) == spares.PER_DIRECTORY)
    assert [p.name for p in tmp_path.iterdir()] == ["f"]  # the spares are unnamed too


def test_linking_over_an_existing_file_replaces_it_whole(
    pool: spares.Spares, tmp_path: Path
) -> None:
    (tmp_path / "f").write_bytes(b"old")
    fd = pool.take(tmp_path)
    assert fd is not None
    os.write(fd, b"new and longer")
    spares.link_into(fd, tmp_path / "f")
    os.close(fd)
    assert (tmp_path / "f").read_bytes() == b"new and longer"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]  # no temp name left


def test_a_discarded_save_leaves_nothing(pool: spares.Spares, tmp_path: Path) -> None:
    with SaveFile(tmp_path / "x", pool.take(tmp_path)) as writer:
        writer.write(b"partial")
    assert list(tmp_path.iterdir()) == []
    named = SaveFile(tmp_path / "y", pool.take(tmp_path))  # as a batch keeps it
    named.write(b"verified")
    named.verify(hashlib.sha256(b"verified").hexdigest())
    named.name()
    assert next(p.name for p in tmp_path.iterdir()).startswith(".y.")
    named.discard()
    assert list(tmp_path.iterdir()) == []


def test_without_o_tmpfile_there_are_no_spares(tmp_path: Path) -> None:
    made = spares.Spares()
    made.enabled = False
    assert made.take(tmp_path) is None
