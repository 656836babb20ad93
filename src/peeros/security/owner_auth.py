"""Owner signatures on owned-file requests, and the replay cache that checks them.

Only the owner of an owned file may download or delete it (SPEC §5). The owner signs
``(operation, owner id, file name, timestamp, nonce)`` with its node's Ed25519 key and
sends the signature with its public key. A verifier (a holder, the tracker) checks that

1. the operation and file name are the ones of the request being authorised,
2. the public key hashes to the owner peer id (peer ids are key digests, so an owner
   restarted at another address is still the owner, and nobody else can be),
3. the signature is valid,
4. the timestamp is within :data:`MAX_SKEW` seconds of the verifier's clock, and
5. the nonce has not been seen within that window (:class:`ReplayGuard`).

Everything here is pure: the clock is an argument. The signed message is versioned and
length-prefixed, so no two distinct tuples serialise to the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections import OrderedDict
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from peeros.errors import Forbidden, Unavailable
from peeros.protocol import OwnerAuth
from peeros.security.identity import Identity, peer_id_of, verify

__all__ = ["MAX_SKEW", "ReplayGuard", "check", "sign", "signed_message"]

#: Largest accepted distance between the signer's and the verifier's clocks (seconds).
MAX_SKEW = 60.0
#: Domain separation: these signatures are for nothing else.
_DOMAIN = b"peeros/v1/owned-request"


def signed_message(op: str, owner_id: str, name: str, timestamp: float, nonce: str) -> bytes:
    """The exact bytes an owner signs."""
    parts = [_DOMAIN, op.encode(), owner_id.encode(), name.encode(), repr(timestamp).encode()]
    parts.append(nonce.encode())
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def sign(identity: Identity, op: Literal["download", "delete"], name: str, now: float) -> OwnerAuth:
    """A fresh signed authorisation for ``op`` on the owner's file ``name``."""
    nonce = os.urandom(16).hex()
    owner_id = identity.peer_id
    raw = identity.public_key.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    signature = identity.sign(signed_message(op, owner_id, name, now, nonce))
    return OwnerAuth(
        op=op,
        owner_id=owner_id,
        name=name,
        timestamp=now,
        nonce=nonce,
        public_key=base64.b64encode(raw).decode(),
        signature=base64.b64encode(signature).decode(),
    )


def _refuse(why: str) -> Forbidden:
    return Forbidden(f"not authorised as the file's owner: {why}")


def check(auth: OwnerAuth | None, op: str, owner_id: str, name: str, now: float) -> None:
    """Raise :class:`Forbidden` unless ``auth`` is the owner's valid signature of this
    request (steps 1 to 4 above; the nonce is :class:`ReplayGuard`'s)."""
    if auth is None:
        raise _refuse("the request carries no owner signature")
    if auth.op != op or auth.owner_id != owner_id or auth.name != name:
        raise _refuse("the signature is for another operation, owner or file")
    try:
        raw = base64.b64decode(auth.public_key, validate=True)
        signature = base64.b64decode(auth.signature, validate=True)
        key = Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, binascii.Error):
        raise _refuse("malformed public key or signature") from None
    if peer_id_of(key) != owner_id:
        raise _refuse("the public key is not the owner's")
    message = signed_message(auth.op, auth.owner_id, auth.name, auth.timestamp, auth.nonce)
    if not verify(key, signature, message):
        raise _refuse("bad signature")
    if abs(now - auth.timestamp) > MAX_SKEW:
        raise _refuse(f"timestamp more than {MAX_SKEW:g}s away from this node's clock")


class ReplayGuard:
    """Nonces seen in the last ``2 * MAX_SKEW`` seconds, at most ``capacity`` of them.

    A nonce older than the window cannot come back: its timestamp is refused by
    :func:`check` first. If the cache is full of nonces still inside the window, new
    requests are refused (503) rather than evicting one that could then be replayed.
    """

    def __init__(self, capacity: int = 100_000, window: float = 2 * MAX_SKEW) -> None:
        self.capacity = capacity
        self.window = window
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def admit(self, auth: OwnerAuth | None, op: str, owner_id: str, name: str, now: float) -> None:
        """:func:`check` the signature, then refuse a nonce seen before; record it."""
        check(auth, op, owner_id, name, now)
        self._expire(now)
        assert auth is not None  # check() refused a missing signature
        key = (auth.owner_id, auth.nonce)
        if key in self._seen:
            raise _refuse("replayed request (nonce already used)")
        if len(self._seen) >= self.capacity:
            raise Unavailable("too many signed requests in the last minutes; retry later")
        self._seen[key] = now

    def _expire(self, now: float) -> None:
        while self._seen:
            key, seen_at = next(iter(self._seen.items()))
            if now - seen_at <= self.window:
                break
            del self._seen[key]
