"""Types and errors of the key-value store (kept apart so kv.py stays about behaviour).

Each error is also a :class:`peeros.errors.PeerOSError` subclass, so the HTTP layer maps
it to the right status without a translation table: a missing key is 404, a bad key or
argument 400, a type clash 409, a quota refusal 429 and an oversized value 413.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Final, TypeAlias

from peeros.errors import BadRequest, Conflict, NotFound, PayloadTooLarge, PeerOSError
from peeros.errors import QuotaExceeded as QuotaRefused

JSONValue: TypeAlias = bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"] | None


class Missing(Enum):
    """Sentinel type: "no such key" where None is a legitimate stored value."""

    MISSING = "MISSING"


MISSING: Final = Missing.MISSING


class MemoryStoreError(PeerOSError):
    """Base class of every error the store raises."""


class KeyNotFound(MemoryStoreError, NotFound):
    def __init__(self, key: str) -> None:
        super().__init__(f"key {key!r} not found")
        self.key = key


class InvalidKey(MemoryStoreError, BadRequest, ValueError):
    """The key is not a non-empty str of at most MAX_KEY_BYTES UTF-8 bytes."""


class InvalidValue(MemoryStoreError, BadRequest, ValueError):
    """The value cannot be encoded as JSON."""


class InvalidArgument(MemoryStoreError, BadRequest, ValueError):
    """A bad option: non-positive TTL, NX with XX, TTL with KEEPTTL, bad delta."""


class WrongType(MemoryStoreError, Conflict, TypeError):
    """The stored value is not what the operation needs (e.g. INCR on a list)."""


class IntegerOverflow(MemoryStoreError, BadRequest, OverflowError):
    """An increment would leave the signed 64-bit range (as Redis)."""


class QuotaExceeded(MemoryStoreError, QuotaRefused):
    """The write would exceed a quota; the store is unchanged."""


class ValueTooLarge(QuotaExceeded, PayloadTooLarge):
    """The value's JSON encoding is above the store's max_value_bytes."""


@dataclass(frozen=True, slots=True)
class Quota:
    """Limits for one owner; None means unlimited."""

    max_keys: int | None = None
    max_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    keys: int = 0
    bytes: int = 0


@dataclass(frozen=True, slots=True)
class StoreStats:
    keys: int
    expires: int  # keys that carry a TTL
    bytes: int
    owners: int
    hits: int
    misses: int
    expired: int  # keys removed because their TTL ran out


@dataclass(slots=True)
class _Entry:
    """One stored key; ``text`` holds the JSON of a list/dict (then value is None)."""

    value: JSONValue
    text: str | None
    owner: str
    size: int  # charged bytes: compact JSON of the value + UTF-8 key
    expires_at: float | None

    def public(self) -> JSONValue:
        return self.value if self.text is None else json.loads(self.text)
