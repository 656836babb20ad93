"""Specification of the PEEROS-ENC1 stream and owner key wrapping (peeros.files.crypto)."""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Callable

import pytest

from peeros.files.crypto import (
    CHUNK_SIZE,
    HEADER_SIZE,
    KEY_SIZE,
    MAGIC,
    TAG_SIZE,
    WRAPPED_KEY_SIZE,
    DecryptionError,
    Decryptor,
    Encryptor,
    ciphertext_size,
    decrypt_bytes,
    derive_owner_key,
    encrypt_bytes,
    new_file_key,
    plaintext_size,
    unwrap_key,
    wrap_key,
)

ENC = CHUNK_SIZE + TAG_SIZE
SIZES = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 7]
ODD_SLICES = [1, 7, 4093, 65537, CHUNK_SIZE + 3]
KEY = bytes(range(KEY_SIZE))
FID = "file-1"


def _random(n: int) -> bytes:
    return os.urandom(n)


def _slices(data: bytes, sizes: list[int]) -> list[bytes]:
    out, pos, i = [], 0, 0
    while pos < len(data):
        step = sizes[i % len(sizes)]
        out.append(data[pos : pos + step])
        pos += step
        i += 1
    return out


def _encrypt(
    data: bytes, key: bytes = KEY, fid: str = FID, slices: list[int] | None = None
) -> bytes:
    enc = Encryptor(key, fid)
    parts = [enc.header()]
    parts += [enc.update(s) for s in _slices(data, slices or [len(data) or 1])]
    parts.append(enc.finalize())
    return b"".join(parts)


def _decrypt(ct: bytes, key: bytes = KEY, fid: str = FID, slices: list[int] | None = None) -> bytes:
    dec = Decryptor(key, fid)
    out = [dec.update(s) for s in _slices(ct, slices or [len(ct) or 1])]
    out.append(dec.finalize())
    return b"".join(out)


@pytest.fixture(scope="module")
def big() -> tuple[bytes, bytes]:
    """3 MiB + 7 plaintext and its ciphertext (4 chunks), shared by the tamper tests."""
    pt = _random(3 * CHUNK_SIZE + 7)
    return pt, _encrypt(pt)


# --- round trips and sizes ---------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_with_odd_slices(size: int) -> None:
    pt = _random(size)
    ct = _encrypt(pt, slices=ODD_SLICES)
    assert len(ct) == ciphertext_size(size)
    assert _decrypt(ct, slices=list(reversed(ODD_SLICES))) == pt


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_one_call(size: int) -> None:
    pt = _random(size)
    assert decrypt_bytes(KEY, FID, encrypt_bytes(KEY, FID, pt)) == pt


def test_update_returns_only_complete_chunks() -> None:
    enc = Encryptor(KEY, FID)
    assert enc.update(b"x" * CHUNK_SIZE) == b""  # might be the last chunk: held back
    assert len(enc.update(b"y")) == ENC  # now it is known not to be
    assert len(enc.finalize()) == 1 + TAG_SIZE


def test_decryptor_releases_final_chunk_only_at_finalize() -> None:
    pt = _random(CHUNK_SIZE + 5)
    dec = Decryptor(KEY, FID)
    assert dec.update(encrypt_bytes(KEY, FID, pt)) == pt[:CHUNK_SIZE]
    assert dec.finalize() == pt[CHUNK_SIZE:]


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, HEADER_SIZE + TAG_SIZE),
        (1, HEADER_SIZE + 1 + TAG_SIZE),
        (CHUNK_SIZE, HEADER_SIZE + CHUNK_SIZE + TAG_SIZE),
        (CHUNK_SIZE + 1, HEADER_SIZE + CHUNK_SIZE + 1 + 2 * TAG_SIZE),
        (3 * CHUNK_SIZE + 7, HEADER_SIZE + 3 * CHUNK_SIZE + 7 + 4 * TAG_SIZE),
    ],
)
def test_ciphertext_size_is_exact_and_invertible(size: int, expected: int) -> None:
    assert ciphertext_size(size) == expected
    assert plaintext_size(expected) == size


def test_plaintext_size_refuses_impossible_sizes() -> None:
    for bad in (0, HEADER_SIZE + TAG_SIZE - 1, HEADER_SIZE + ENC + TAG_SIZE):
        with pytest.raises(ValueError):
            plaintext_size(bad)


def test_header_layout_and_fresh_nonce_prefix() -> None:
    a, b = Encryptor(KEY, FID).header(), Encryptor(KEY, FID).header()
    assert len(a) == HEADER_SIZE
    assert a.startswith(MAGIC)
    assert a != b  # random nonce prefix per stream


def test_ciphertext_hides_plaintext_marker() -> None:
    marker = b"PEEROS-SECRET-MARKER-0123456789"
    pt = (marker + b"\0" * 1000) * 3000  # ~3 MiB, marker repeated across chunks
    ct = encrypt_bytes(KEY, FID, pt)
    assert marker not in ct
    assert marker[:8] not in ct


def test_same_plaintext_encrypts_differently() -> None:
    assert encrypt_bytes(KEY, FID, b"hello") != encrypt_bytes(KEY, FID, b"hello")


# --- tampering ------------------------------------------------------------------


def _flip(ct: bytes, pos: int) -> bytes:
    b = bytearray(ct)
    b[pos] ^= 0x01
    return bytes(b)


@pytest.mark.parametrize(
    "where",
    [
        0,  # magic
        len(MAGIC),  # version
        len(MAGIC) + 1,  # algorithm id
        len(MAGIC) + 4,  # chunk size
        HEADER_SIZE - 1,  # nonce prefix
        HEADER_SIZE,  # first byte of chunk 0
        HEADER_SIZE + CHUNK_SIZE + 3,  # tag of chunk 0
        HEADER_SIZE + ENC + 12345,  # body of chunk 1
        HEADER_SIZE + 3 * ENC - 1,  # last tag byte of chunk 2
        HEADER_SIZE + 3 * ENC + 2,  # body of the final chunk
        -1,  # last byte of the final tag
    ],
)
def test_any_flipped_bit_is_detected(big: tuple[bytes, bytes], where: int) -> None:
    _, ct = big
    with pytest.raises(DecryptionError):
        _decrypt(_flip(ct, where % len(ct)), slices=[65537])


def test_error_names_the_chunk_index(big: tuple[bytes, bytes]) -> None:
    _, ct = big
    with pytest.raises(DecryptionError, match="chunk 2") as info:
        decrypt_bytes(KEY, FID, _flip(ct, HEADER_SIZE + 2 * ENC + 5))
    assert info.value.chunk_index == 2


def test_truncation_at_chunk_boundary_fails_at_finalize(big: tuple[bytes, bytes]) -> None:
    pt, ct = big
    dec = Decryptor(KEY, FID)
    released = dec.update(ct[: HEADER_SIZE + 3 * ENC])  # drop the final chunk
    assert released == pt[: 2 * CHUNK_SIZE]  # the last full chunk is still held back
    with pytest.raises(DecryptionError, match="final chunk 2"):
        dec.finalize()


@pytest.mark.parametrize("keep", [0, 5, HEADER_SIZE, HEADER_SIZE + 15, HEADER_SIZE + ENC + 100])
def test_truncation_anywhere_fails(big: tuple[bytes, bytes], keep: int) -> None:
    _, ct = big
    with pytest.raises(DecryptionError):
        decrypt_bytes(KEY, FID, ct[:keep])


def test_appended_data_fails(big: tuple[bytes, bytes]) -> None:
    _, ct = big
    with pytest.raises(DecryptionError):
        decrypt_bytes(KEY, FID, ct + b"\0" * (TAG_SIZE + 1))


def test_swapped_chunks_fail(big: tuple[bytes, bytes]) -> None:
    _, ct = big
    c0 = ct[HEADER_SIZE : HEADER_SIZE + ENC]
    c1 = ct[HEADER_SIZE + ENC : HEADER_SIZE + 2 * ENC]
    swapped = ct[:HEADER_SIZE] + c1 + c0 + ct[HEADER_SIZE + 2 * ENC :]
    with pytest.raises(DecryptionError, match="chunk 0"):
        decrypt_bytes(KEY, FID, swapped)


def test_chunk_from_another_file_fails() -> None:
    pt = _random(2 * CHUNK_SIZE + 1)
    mine = encrypt_bytes(KEY, "file-a", pt)
    other = encrypt_bytes(KEY, "file-b", pt)  # same key even: the file id still binds
    spliced = mine[: HEADER_SIZE + ENC] + other[HEADER_SIZE + ENC :]
    with pytest.raises(DecryptionError, match="chunk 1"):
        decrypt_bytes(KEY, "file-a", spliced)


def test_wrong_file_id_or_key_fails() -> None:
    ct = encrypt_bytes(KEY, FID, b"data")
    with pytest.raises(DecryptionError):
        decrypt_bytes(KEY, "file-2", ct)
    with pytest.raises(DecryptionError):
        decrypt_bytes(new_file_key(), FID, ct)


def test_decryptor_refuses_use_after_failure() -> None:
    dec = Decryptor(KEY, FID)
    with pytest.raises(DecryptionError):
        dec.update(b"NOT-A-PEEROS-STREAM-AT-ALL")
    with pytest.raises(DecryptionError):
        dec.update(b"more")


def test_encryptor_refuses_use_after_finalize() -> None:
    enc = Encryptor(KEY, FID)
    enc.finalize()
    with pytest.raises(RuntimeError):
        enc.update(b"x")


# --- keys -------------------------------------------------------------------------


def test_owner_key_is_deterministic_and_secret_specific() -> None:
    secret = _random(32)
    assert derive_owner_key(secret) == derive_owner_key(secret)
    assert len(derive_owner_key(secret)) == KEY_SIZE
    assert derive_owner_key(secret) != derive_owner_key(_random(32))
    with pytest.raises(ValueError):
        derive_owner_key(b"short")


def test_wrap_unwrap_round_trip() -> None:
    owner, fk = derive_owner_key(_random(32)), new_file_key()
    wrapped = wrap_key(owner, fk, FID)
    assert len(wrapped) == WRAPPED_KEY_SIZE
    assert fk not in wrapped
    assert unwrap_key(owner, wrapped, FID) == fk


def test_wrong_owner_key_cannot_unwrap() -> None:
    fk = new_file_key()
    wrapped = wrap_key(derive_owner_key(_random(32)), fk, FID)
    with pytest.raises(DecryptionError):
        unwrap_key(derive_owner_key(_random(32)), wrapped, FID)


def test_wrapped_key_is_bound_to_file_id_and_tamper_evident() -> None:
    owner, fk = derive_owner_key(_random(32)), new_file_key()
    wrapped = wrap_key(owner, fk, FID)
    with pytest.raises(DecryptionError):
        unwrap_key(owner, wrapped, "another-file")
    for pos in (0, 5, len(wrapped) - 1):
        with pytest.raises(DecryptionError):
            unwrap_key(owner, _flip(wrapped, pos), FID)
    with pytest.raises(DecryptionError):
        unwrap_key(owner, wrapped[:-1], FID)


def test_bad_key_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        Encryptor(b"short", FID)
    with pytest.raises(ValueError):
        wrap_key(KEY, b"short", FID)
    with pytest.raises(ValueError):
        Encryptor(KEY, "")


def _peak_bytes(feed: Callable[[], None]) -> int:
    tracemalloc.start()
    try:
        feed()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_is_bounded_by_about_two_chunks() -> None:
    """16 MiB streamed in 256 KiB slices: each direction holds ~2 chunks at most."""
    piece = b"\xab" * (CHUNK_SIZE // 4 + 1)
    count = 64
    ct = encrypt_bytes(KEY, FID, piece * count)
    seen = {"enc": 0, "dec": 0}

    def encrypt() -> None:
        enc = Encryptor(KEY, FID)
        for _ in range(count):
            seen["enc"] += len(enc.update(piece))
        seen["enc"] += len(enc.finalize())

    def decrypt() -> None:
        dec = Decryptor(KEY, FID)
        view = memoryview(ct)
        for pos in range(0, len(ct), len(piece)):
            seen["dec"] += len(dec.update(view[pos : pos + len(piece)]))
        seen["dec"] += len(dec.finalize())

    assert _peak_bytes(encrypt) < 2.5 * CHUNK_SIZE
    assert _peak_bytes(decrypt) < 2.5 * CHUNK_SIZE + len(piece)
    assert seen == {"enc": len(ct) - HEADER_SIZE, "dec": count * len(piece)}
