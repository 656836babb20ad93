"""Owner signatures and the replay cache: pure, with an explicit clock."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from peeros.errors import Forbidden, Unavailable
from peeros.security.identity import Identity
from peeros.security.owner_auth import MAX_SKEW, ReplayGuard, check, sign, signed_message

NOW = 1_700_000_000.0


@pytest.fixture
def owner() -> Identity:
    return Identity(Ed25519PrivateKey.generate())


def test_a_valid_signature_is_accepted(owner: Identity) -> None:
    auth = sign(owner, "download", "a.bin", NOW)
    check(auth, "download", owner.peer_id, "a.bin", NOW + MAX_SKEW)


@pytest.mark.parametrize(
    ("op", "name", "owner_id"),
    [("delete", "a.bin", None), ("download", "b.bin", None), ("download", "a.bin", "x" * 26)],
)
def test_a_signature_authorises_only_its_own_request(
    owner: Identity, op: str, name: str, owner_id: str | None
) -> None:
    auth = sign(owner, "download", "a.bin", NOW)
    with pytest.raises(Forbidden):
        check(auth, op, owner_id or owner.peer_id, name, NOW)


def test_another_key_cannot_sign_for_the_owner(owner: Identity) -> None:
    thief = Identity(Ed25519PrivateKey.generate())
    forged = sign(thief, "delete", "a.bin", NOW).model_copy(update={"owner_id": owner.peer_id})
    with pytest.raises(Forbidden, match="not the owner's"):
        check(forged, "delete", owner.peer_id, "a.bin", NOW)
    # the owner's public key with the thief's signature
    real = sign(owner, "delete", "a.bin", NOW)
    mixed = real.model_copy(update={"signature": forged.signature})
    with pytest.raises(Forbidden, match="bad signature"):
        check(mixed, "delete", owner.peer_id, "a.bin", NOW)


def test_tampered_fields_break_the_signature(owner: Identity) -> None:
    auth = sign(owner, "download", "a.bin", NOW)
    for update in ({"timestamp": NOW + 1}, {"nonce": "0" * 32}):
        with pytest.raises(Forbidden, match="bad signature"):
            check(auth.model_copy(update=update), "download", owner.peer_id, "a.bin", NOW)


def test_stale_or_future_timestamps_are_refused(owner: Identity) -> None:
    for skew in (-MAX_SKEW - 1, MAX_SKEW + 1):
        auth = sign(owner, "download", "a.bin", NOW + skew)
        with pytest.raises(Forbidden, match="timestamp"):
            check(auth, "download", owner.peer_id, "a.bin", NOW)


def test_missing_signature_is_refused(owner: Identity) -> None:
    with pytest.raises(Forbidden, match="no owner signature"):
        check(None, "download", owner.peer_id, "a.bin", NOW)


def test_signed_message_is_unambiguous() -> None:
    assert signed_message("download", "o", "ab", NOW, "n") != signed_message(
        "download", "o", "a", NOW, "bn"
    )


def test_replays_are_refused_and_the_cache_stays_bounded(owner: Identity) -> None:
    guard = ReplayGuard(capacity=3)
    first = sign(owner, "delete", "a.bin", NOW)
    guard.admit(first, "delete", owner.peer_id, "a.bin", NOW)
    with pytest.raises(Forbidden, match="replayed"):
        guard.admit(first, "delete", owner.peer_id, "a.bin", NOW + 1)
    for i in range(2):
        guard.admit(sign(owner, "delete", "a.bin", NOW), "delete", owner.peer_id, "a.bin", NOW + i)
    with pytest.raises(Unavailable):  # full of nonces that could still be replayed
        guard.admit(sign(owner, "delete", "a.bin", NOW), "delete", owner.peer_id, "a.bin", NOW)
    assert len(guard) == 3
    # once out of the window they expire, and their timestamps are refused anyway
    later = NOW + guard.window + 2
    guard.admit(sign(owner, "delete", "a.bin", later), "delete", owner.peer_id, "a.bin", later)
    assert len(guard) == 1
    with pytest.raises(Forbidden, match="timestamp"):
        guard.admit(first, "delete", owner.peer_id, "a.bin", later)


def test_a_refused_request_leaves_no_nonce_behind(owner: Identity) -> None:
    guard = ReplayGuard()
    auth = sign(owner, "download", "a.bin", NOW)
    with pytest.raises(Forbidden):
        guard.admit(auth, "delete", owner.peer_id, "a.bin", NOW)
    assert len(guard) == 0
    guard.admit(auth, "download", owner.peer_id, "a.bin", NOW)
