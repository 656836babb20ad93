"""A holder's owned-file storage: per-owner quotas checked before any byte is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from peeros.errors import BadRequest, NotFound, QuotaExceeded
from peeros.files.owned_store import OwnedStore

OWNER = "a" * 26
OTHER = "b" * 26


def store_blob(store: OwnedStore, owner: str, name: str, data: bytes) -> None:
    with store.begin(owner, name, len(data)) as writer:
        writer.write(data)
        writer.commit()


def test_quota_is_per_owner_and_checked_before_writing(tmp_path: Path) -> None:
    store = OwnedStore(tmp_path / "owned", quota_bytes=100, peer_id="p" * 26)
    store_blob(store, OWNER, "a", b"x" * 60)
    with pytest.raises(QuotaExceeded, match="quota"):
        store.begin(OWNER, "b", 41)
    assert sorted(p.name for p in (tmp_path / "owned" / OWNER).iterdir()) == ["a"]
    store_blob(store, OWNER, "a", b"y" * 100)  # replacing a blob frees its bytes
    store_blob(store, OTHER, "a", b"z" * 100)  # another owner has its own quota
    assert store.usage(OWNER) == store.usage(OTHER) == 100


def test_names_and_owners_are_checked(tmp_path: Path) -> None:
    store = OwnedStore(tmp_path / "owned", quota_bytes=100, peer_id="p" * 26)
    for owner, name in ((OWNER, "../x"), ("../etc", "x"), (OWNER, ".part-x")):
        with pytest.raises(BadRequest):
            store.begin(owner, name, 1)
    with pytest.raises(BadRequest, match="Content-Length"):
        store.begin(OWNER, "x", None)
    with pytest.raises(NotFound):
        store.open(OWNER, "x")
    with pytest.raises(NotFound):
        store.delete(OWNER, "x")


def test_partial_uploads_are_removed_on_restart(tmp_path: Path) -> None:
    store = OwnedStore(tmp_path / "owned", quota_bytes=100, peer_id="p" * 26)
    writer = store.begin(OWNER, "cut", 50)
    writer.write(b"x" * 10)  # a crash here leaves the temp file behind
    OwnedStore(tmp_path / "owned", quota_bytes=100, peer_id="p" * 26)
    assert not (tmp_path / "owned" / OWNER).exists()
    writer.abort()
