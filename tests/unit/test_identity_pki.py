"""Identity and PKI: peer ids derive from keys; tokens pin the CA; CSRs become member certs."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from peeros.errors import BadRequest
from peeros.security import identity, pki


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_peer_id_is_derived_from_the_public_key(tmp_path: Path) -> None:
    first = identity.load_or_create(tmp_path)
    again = identity.load_or_create(tmp_path)
    assert first.peer_id == again.peer_id
    assert len(first.peer_id) == 26 and set(first.peer_id) <= set(
        "abcdefghijklmnopqrstuvwxyz234567"
    )
    other = identity.Identity(Ed25519PrivateKey.generate())
    assert other.peer_id != first.peer_id
    assert mode(tmp_path / identity.KEY_FILE) == 0o600


def test_signatures_verify_only_for_the_signer() -> None:
    me = identity.Identity(Ed25519PrivateKey.generate())
    sig = me.sign(b"delete file x")
    assert identity.verify(me.public_key, sig, b"delete file x")
    assert not identity.verify(me.public_key, sig, b"delete file y")
    stranger = identity.Identity(Ed25519PrivateKey.generate())
    assert not identity.verify(stranger.public_key, sig, b"delete file x")


def test_ca_and_token_are_created_once_with_private_modes(tmp_path: Path) -> None:
    ca = pki.load_or_create_ca(tmp_path)
    token = pki.load_or_create_token(tmp_path, ca)
    assert pki.load_or_create_ca(tmp_path).fingerprint == ca.fingerprint
    assert str(pki.load_or_create_token(tmp_path, ca)) == str(token)
    assert token.ca_fingerprint == ca.fingerprint
    assert mode(tmp_path / pki.CA_KEY_FILE) == 0o600
    assert mode(tmp_path / pki.TOKEN_FILE) == 0o600


def test_token_round_trip_and_malformed_tokens() -> None:
    token = pki.JoinToken("ab" * 32, "s3cret-s3cret-s3cret")
    assert pki.JoinToken.parse(str(token)) == token
    assert token.secret_matches("s3cret-s3cret-s3cret")
    assert not token.secret_matches("s3cret-s3cret-s3creX")
    for bad in [
        "",
        "peeros1",
        "peeros2." + "ab" * 32 + ".s3cret-s3cret-s3cret",
        "peeros1.zz.s3cret-s3cret-s3cret",
        "peeros1." + "ab" * 32 + ".short",
    ]:
        with pytest.raises(BadRequest, match="join token is malformed"):
            pki.JoinToken.parse(bad)


def test_csr_becomes_a_certificate_for_the_same_peer_id(tmp_path: Path) -> None:
    ca = pki.load_or_create_ca(tmp_path)
    me = identity.Identity(Ed25519PrivateKey.generate())
    peer_id, cert = ca.sign_csr(pki.make_csr(me))
    assert peer_id == me.peer_id == pki.cert_peer_id(cert)
    assert cert.issuer == ca.cert.subject
    cert.verify_directly_issued_by(ca.cert)


def test_garbage_csr_is_a_bad_request(tmp_path: Path) -> None:
    ca = pki.load_or_create_ca(tmp_path)
    with pytest.raises(BadRequest, match="csr_pem"):
        ca.sign_csr("-----BEGIN CERTIFICATE REQUEST-----\nnope\n-----END CERTIFICATE REQUEST-----")


def test_enrollment_ca_is_derived_from_the_fingerprint() -> None:
    a = pki.enrollment_ca("ab" * 32)
    b = pki.enrollment_ca("ab" * 32)
    c = pki.enrollment_ca("cd" * 32)
    assert a.cert.public_key() == b.cert.public_key()
    assert a.cert.public_key() != c.cert.public_key()
    assert a.cert.subject.rfc4514_string() == f"CN={pki.ENROLLMENT_CA_NAME}"
