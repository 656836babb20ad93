"""Node identity: an Ed25519 key pair per node, and the peer id derived from it.

Like a Syncthing device id, the peer id is a digest of the public key, so it cannot be
claimed, only proven: whoever holds the private key *is* that peer, at any address.
``peer_id = base32(sha256(raw public key))[:26]`` in lower case (130 bits).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from peeros.fsutil import write_private

PEER_ID_LENGTH = 26
KEY_FILE = "node.key"


def peer_id_of(public_key: Ed25519PublicKey) -> str:
    """The peer id of a public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    digest = hashlib.sha256(raw).digest()
    return base64.b32encode(digest).decode().rstrip("=").lower()[:PEER_ID_LENGTH]


@dataclass(frozen=True)
class Identity:
    """A node's private key and what follows from it."""

    key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.key.public_key()

    @property
    def peer_id(self) -> str:
        return peer_id_of(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message)

    def secret_bytes(self) -> bytes:
        """The raw private key: input to key derivation for owner-only keys."""
        return self.key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    def private_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def verify(public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def load_or_create(data_dir: Path) -> Identity:
    """Load ``data_dir/node.key``, creating it (mode 0600) on the first start."""
    path = data_dir / KEY_FILE
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        return Identity(key)
    identity = Identity(Ed25519PrivateKey.generate())
    write_private(path, identity.private_pem())
    return identity
