"""Owner-side encryption of owned files: key wrapping and chunked streaming AEAD.

This is THE only module in PeerOS that imports AEAD and KDF primitives. Every
other module encrypts, decrypts and wraps keys through the functions below, in
the spirit of Tahoe-LAFS ("code inside Tahoe should only use functions from
allmydata.crypto.aes"): one place to audit, one place to change an algorithm.
The constants are declared once, at the top. Signing (Ed25519) lives with the
node identity, not here.

Keys (SPEC §5, "Owned files")
-----------------------------
* owner key: ``HKDF-SHA256(node_secret, salt=None, info=OWNER_KEY_INFO)``, 32 bytes.
  Derived from the node's private key, so only the owner can compute it and it
  never has to be stored or sent anywhere.
* file key: 32 random bytes per file (``new_file_key``). Storage peers hold the
  file key only in wrapped form.
* wrapped key (``wrap_key``), 61 bytes: ``version(1) | nonce(12) | AES-256-GCM(owner
  key, file key) with tag(16)``; associated data ``WRAP_AAD_PREFIX | version | file id``,
  so a wrapped key copied onto another file id does not unwrap.

Ciphertext stream, format ``PEEROS-ENC1``
-----------------------------------------
The STREAM construction of Hoang, Reyhanitabar, Rogaway and Vizár, "Online
Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance" (CRYPTO 2015),
as used by age and Google Tink's streaming AEAD::

    header  = MAGIC(11) | version(1) | algorithm(1) | chunk size(4, BE) | nonce prefix(4)
    chunk i = AES-256-GCM(file key, nonce_i, plaintext_i, aad_i)     (ciphertext | 16-byte tag)
    nonce_i = nonce prefix | i as 8-byte big-endian counter
    aad_i   = header | len(file id)(2, BE) | file id (UTF-8) | i(8, BE) | final flag(1)

Every chunk except the last carries exactly ``CHUNK_SIZE`` plaintext bytes; the
last carries 0..``CHUNK_SIZE`` bytes (0 only for an empty file) and is flagged
final. Because the header, the file id, the index and the final flag are all
authenticated by every tag, the reader detects: any bit flip (header included),
reordered or swapped chunks (index), chunks spliced in from another file (key
and file id), truncation at a chunk boundary (the last chunk present is not
flagged final) and appended data (the flagged-final chunk is not last). Like
age, the reader only knows a chunk is the last one when the stream ends, so the
final chunk's plaintext is released by ``Decryptor.finalize``; callers must
treat earlier output as provisional until ``finalize`` returns.

The per-file key makes the counter nonce unique already; the random 4-byte
prefix is a second line of defence should a file key ever be reused.
Throughput here is ~1 GB/s per core (NOTES.md "Moving bytes"); chunk size does
not matter for speed, 1 MiB keeps memory bounded to about two chunks.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "CHUNK_SIZE",
    "HEADER_SIZE",
    "KEY_SIZE",
    "MAGIC",
    "TAG_SIZE",
    "WRAPPED_KEY_SIZE",
    "DecryptionError",
    "Decryptor",
    "Encryptor",
    "ciphertext_size",
    "decrypt_bytes",
    "derive_owner_key",
    "encrypt_bytes",
    "new_file_key",
    "plaintext_size",
    "unwrap_key",
    "wrap_key",
]

# --- Crypto constants: declared once, here, for the whole of PeerOS. -------------
MAGIC = b"PEEROS-ENC1"
FORMAT_VERSION = 1
ALG_AES_256_GCM = 1  # 2 is reserved for ChaCha20-Poly1305
CHUNK_SIZE = 1 << 20
KEY_SIZE = 32
TAG_SIZE = 16
NONCE_SIZE = 12
NONCE_PREFIX_SIZE = 4
_HEADER = struct.Struct(f">{len(MAGIC)}sBBI{NONCE_PREFIX_SIZE}s")
HEADER_SIZE = _HEADER.size
_CHUNK_AAD_TAIL = struct.Struct(">QB")
MAX_FILE_ID_BYTES = 0xFFFF

OWNER_KEY_INFO = b"peeros/v1/owner-key-wrapping-key"
MIN_NODE_SECRET_SIZE = 32
WRAP_VERSION = 1
WRAP_AAD_PREFIX = b"PEEROS-KEYWRAP"
WRAPPED_KEY_SIZE = 1 + NONCE_SIZE + KEY_SIZE + TAG_SIZE

_ENC_CHUNK = CHUNK_SIZE + TAG_SIZE


class DecryptionError(Exception):
    """The ciphertext or wrapped key is not authentic: wrong key, wrong file id,
    tampering, truncation or a malformed stream. Never return data after this."""

    def __init__(self, message: str, chunk_index: int | None = None) -> None:
        super().__init__(message)
        self.chunk_index = chunk_index


def _check_key(key: bytes, what: str) -> None:
    if len(key) != KEY_SIZE:
        raise ValueError(f"{what} must be {KEY_SIZE} bytes, got {len(key)}")


def _file_id_bytes(file_id: str) -> bytes:
    raw = file_id.encode("utf-8")
    if not raw:
        raise ValueError("file id must not be empty")
    if len(raw) > MAX_FILE_ID_BYTES:
        raise ValueError(f"file id must be at most {MAX_FILE_ID_BYTES} bytes in UTF-8")
    return raw


# --- Keys ---------------------------------------------------------------------------


def derive_owner_key(node_secret: bytes) -> bytes:
    """Derive the owner's 32-byte key-wrapping key from the node's private-key bytes.

    Deterministic, so an owner that lost its local state re-derives the same key
    from its identity. The versioned info string separates it from any other use
    of the same secret.
    """
    if len(node_secret) < MIN_NODE_SECRET_SIZE:
        raise ValueError(f"node secret must be at least {MIN_NODE_SECRET_SIZE} bytes")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None, info=OWNER_KEY_INFO)
    return hkdf.derive(node_secret)


def new_file_key() -> bytes:
    """A fresh random 32-byte file key (one per file, never reused)."""
    return os.urandom(KEY_SIZE)


def _wrap_aad(file_id: str) -> bytes:
    return WRAP_AAD_PREFIX + bytes([WRAP_VERSION]) + _file_id_bytes(file_id)


def wrap_key(owner_key: bytes, file_key: bytes, file_id: str) -> bytes:
    """Encrypt ``file_key`` under ``owner_key``, bound to ``file_id``; 61 bytes."""
    _check_key(owner_key, "owner key")
    _check_key(file_key, "file key")
    nonce = os.urandom(NONCE_SIZE)
    sealed = AESGCM(owner_key).encrypt(nonce, file_key, _wrap_aad(file_id))
    return bytes([WRAP_VERSION]) + nonce + sealed


def unwrap_key(owner_key: bytes, wrapped: bytes, file_id: str) -> bytes:
    """Recover the file key; ``DecryptionError`` on a wrong key, file id or tampering."""
    _check_key(owner_key, "owner key")
    if len(wrapped) != WRAPPED_KEY_SIZE or wrapped[0] != WRAP_VERSION:
        raise DecryptionError("wrapped key is malformed or of an unknown version")
    nonce, sealed = wrapped[1 : 1 + NONCE_SIZE], wrapped[1 + NONCE_SIZE :]
    try:
        return AESGCM(owner_key).decrypt(nonce, sealed, _wrap_aad(file_id))
    except InvalidTag:
        raise DecryptionError("cannot unwrap file key: wrong owner key or file id") from None


# --- Sizes --------------------------------------------------------------------------


def ciphertext_size(plaintext_size: int) -> int:
    """Exact size of the encrypted stream for ``plaintext_size`` bytes of plaintext."""
    if plaintext_size < 0:
        raise ValueError("plaintext size must not be negative")
    chunks = max(1, -(-plaintext_size // CHUNK_SIZE))
    return HEADER_SIZE + plaintext_size + chunks * TAG_SIZE


def plaintext_size(ciphertext_size: int) -> int:
    """Inverse of ``ciphertext_size``; ``ValueError`` if no plaintext has that size."""
    body = ciphertext_size - HEADER_SIZE
    if body < TAG_SIZE:
        raise ValueError(f"{ciphertext_size} bytes is too short for a {MAGIC.decode()} stream")
    full, rest = divmod(body, _ENC_CHUNK)
    if rest == 0:  # the last chunk is full (or, for full == 0, impossible)
        return full * CHUNK_SIZE
    if rest < TAG_SIZE or (full > 0 and rest == TAG_SIZE):
        raise ValueError(f"{ciphertext_size} is not a valid {MAGIC.decode()} stream size")
    return full * CHUNK_SIZE + rest - TAG_SIZE


# --- Streaming AEAD -----------------------------------------------------------------


class _ChunkCipher:
    """What both directions share: the key, and the per-chunk nonce and AAD (STREAM)."""

    def __init__(self, file_key: bytes, file_id: str, header: bytes, nonce_prefix: bytes) -> None:
        fid = _file_id_bytes(file_id)
        self._aead = AESGCM(file_key)
        self._nonce_prefix = nonce_prefix
        self._aad_prefix = header + len(fid).to_bytes(2, "big") + fid
        self.index = 0  # index of the next chunk

    def _next(self, final: bool) -> tuple[bytes, bytes]:
        i = self.index
        self.index += 1
        nonce = self._nonce_prefix + i.to_bytes(8, "big")
        return nonce, self._aad_prefix + _CHUNK_AAD_TAIL.pack(i, 1 if final else 0)

    def seal(self, chunk: bytes | bytearray | memoryview, *, final: bool) -> bytes:
        nonce, aad = self._next(final)
        return self._aead.encrypt(nonce, chunk, aad)

    def open(self, chunk: bytes | bytearray | memoryview, *, final: bool) -> bytes:
        """Decrypt the next chunk; raises ``InvalidTag`` if it is not authentic."""
        nonce, aad = self._next(final)
        return self._aead.decrypt(nonce, chunk, aad)


class Encryptor:
    """Incremental encryption of one file: ``header()``, ``update()``..., ``finalize()``.

    The concatenation of the three outputs is the ciphertext stream. Holds at
    most one partial chunk between calls.
    """

    def __init__(self, file_key: bytes, file_id: str) -> None:
        _check_key(file_key, "file key")
        prefix = os.urandom(NONCE_PREFIX_SIZE)
        self._header = _HEADER.pack(MAGIC, FORMAT_VERSION, ALG_AES_256_GCM, CHUNK_SIZE, prefix)
        self._cipher = _ChunkCipher(file_key, file_id, self._header, prefix)
        self._buf = bytearray()
        self._done = False

    def header(self) -> bytes:
        """The stream header; send it before the first chunk."""
        return self._header

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        """Buffer ``data``; return every chunk now known not to be the last one."""
        if self._done:
            raise RuntimeError("Encryptor already finalized")
        view = memoryview(data).cast("B")
        out: list[bytes] = []
        pos = 0
        if self._buf:  # top up the buffered partial chunk first
            pos = min(CHUNK_SIZE - len(self._buf), len(view))
            self._buf += view[:pos]
            if len(self._buf) == CHUNK_SIZE and pos < len(view):
                out.append(self._cipher.seal(self._buf, final=False))
                self._buf.clear()
        # A full chunk is sealed only once at least one more byte follows it,
        # so that finalize() can always flag the real last chunk.
        while len(view) - pos > CHUNK_SIZE:
            out.append(self._cipher.seal(view[pos : pos + CHUNK_SIZE], final=False))
            pos += CHUNK_SIZE
        if pos < len(view):
            self._buf += view[pos:]
        return b"".join(out)

    def finalize(self) -> bytes:
        """Return the last chunk (possibly empty plaintext), flagged final."""
        if self._done:
            raise RuntimeError("Encryptor already finalized")
        self._done = True
        last = self._cipher.seal(self._buf, final=True)
        self._buf = bytearray()
        return last


class Decryptor:
    """Incremental, verifying decryption of one stream.

    ``update`` accepts arbitrary slices of the stream and returns the plaintext
    of each chunk verified so far; ``finalize`` verifies and returns the last
    chunk and raises ``DecryptionError`` if the stream was truncated. After a
    ``DecryptionError`` the object refuses further use. Holds at most one
    encrypted chunk plus the caller's current slice.
    """

    def __init__(self, file_key: bytes, file_id: str) -> None:
        _check_key(file_key, "file key")
        _file_id_bytes(file_id)
        self._file_key = file_key
        self._file_id = file_id
        self._cipher: _ChunkCipher | None = None
        self._buf = bytearray()
        self._failed = False
        self._done = False

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        """Consume ``data``; return the plaintext of every chunk verified as non-final."""
        self._check_usable()
        self._buf += data
        if self._cipher is None:
            if len(self._buf) < HEADER_SIZE:
                return b""
            self._cipher = self._parse_header(bytes(self._buf[:HEADER_SIZE]))
            del self._buf[:HEADER_SIZE]
        out: list[bytes] = []
        pos = 0
        with memoryview(self._buf) as view:
            # More bytes after a full chunk prove that it is not the final one.
            while len(view) - pos > _ENC_CHUNK:
                out.append(self._open(self._cipher, view[pos : pos + _ENC_CHUNK], final=False))
                pos += _ENC_CHUNK
        del self._buf[:pos]
        return b"".join(out)

    def finalize(self) -> bytes:
        """Verify the last chunk as final and return its plaintext."""
        self._check_usable()
        self._done = True
        if self._cipher is None:
            self._failed = True
            raise DecryptionError("stream truncated: incomplete header")
        if len(self._buf) < TAG_SIZE:
            self._failed = True
            index = self._cipher.index
            raise DecryptionError(f"stream truncated: chunk {index} is incomplete", index)
        last = self._open(self._cipher, self._buf, final=True)
        self._buf = bytearray()
        return last

    def _check_usable(self) -> None:
        if self._failed:
            raise DecryptionError("stream already failed authentication")
        if self._done:
            raise RuntimeError("Decryptor already finalized")

    def _parse_header(self, header: bytes) -> _ChunkCipher:
        magic, version, alg, chunk_size, prefix = _HEADER.unpack(header)
        problem = None
        if magic != MAGIC:
            problem = "not a PEEROS-ENC stream (bad magic)"
        elif version != FORMAT_VERSION:
            problem = f"unsupported format version {version}"
        elif alg != ALG_AES_256_GCM:
            problem = f"unsupported algorithm id {alg}"
        elif chunk_size != CHUNK_SIZE:
            problem = f"unsupported chunk size {chunk_size}"
        if problem is not None:
            self._failed = True
            raise DecryptionError(f"bad header: {problem}")
        return _ChunkCipher(self._file_key, self._file_id, header, prefix)

    def _open(self, cipher: _ChunkCipher, chunk: bytearray | memoryview, *, final: bool) -> bytes:
        index = cipher.index
        try:
            return cipher.open(chunk, final=final)
        except InvalidTag:
            self._failed = True
            what = "final chunk" if final else "chunk"
            raise DecryptionError(
                f"{what} {index} failed authentication "
                "(tampered, reordered, truncated, or wrong key/file id)",
                index,
            ) from None


def encrypt_bytes(file_key: bytes, file_id: str, plaintext: bytes) -> bytes:
    """Encrypt a whole (small) plaintext into one ``PEEROS-ENC1`` stream."""
    enc = Encryptor(file_key, file_id)
    return enc.header() + enc.update(plaintext) + enc.finalize()


def decrypt_bytes(file_key: bytes, file_id: str, ciphertext: bytes) -> bytes:
    """Verify and decrypt a whole (small) stream; ``DecryptionError`` if not authentic."""
    dec = Decryptor(file_key, file_id)
    return dec.update(ciphertext) + dec.finalize()
