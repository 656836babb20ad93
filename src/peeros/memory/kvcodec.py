"""The key-value store's rules: key sizes, TTLs, JSON values and their charged size,
quota checks, Redis-style 64-bit integers. Pure functions (the store, :mod:`peeros.memory.kv`,
holds the state and the lock)."""

from __future__ import annotations

import json
import math
import re
from typing import Final

from peeros.memory.kvtypes import (
    InvalidArgument,
    InvalidKey,
    InvalidValue,
    JSONValue,
    Quota,
    QuotaExceeded,
    ValueTooLarge,
    _Entry,
)

MAX_KEY_BYTES: Final = 1024
DEFAULT_MAX_VALUE_BYTES: Final = 64 * 1024 * 1024
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
_SCALARS: Final = frozenset({type(None), bool, int, float, str})
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_REDIS_INT = re.compile(r"-?[1-9][0-9]{0,18}|0")  # Redis string2ll: no '+', no leading 0


def key_bytes(key: object) -> int:
    if not isinstance(key, str) or not key:
        raise InvalidKey(f"key must be a non-empty str, got {key!r}")
    n = len(key) if key.isascii() else len(key.encode("utf-8", "surrogatepass"))
    if n > MAX_KEY_BYTES:
        raise InvalidKey(f"key {key[:32]!r}... is {n} bytes, more than {MAX_KEY_BYTES}")
    return n


def check_ttl(ttl: float) -> None:
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl < math.inf:
        raise InvalidArgument(f"ttl must be a finite number of seconds > 0, got {ttl!r}")


def encode_value(
    key: str, value: JSONValue, max_value_bytes: int
) -> tuple[JSONValue, str | None, int]:
    """``(stored scalar, or None; compact JSON text of a list/dict, or None; charged size)``."""
    kbytes = key_bytes(key)
    try:
        text = _JSON.encode(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidValue(f"value of key {key!r} is not JSON: {exc}") from None
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    if size > max_value_bytes:
        raise ValueTooLarge(
            f"quota exceeded: value of key {key!r} is {size} bytes, "
            f"max_value_bytes is {max_value_bytes}"
        )
    if type(value) in _SCALARS:
        return value, None, size + kbytes
    if isinstance(value, list | dict | tuple):
        return None, text, size + kbytes
    return json.loads(text), None, size + kbytes  # int/str/float subclasses


def as_int64(entry: _Entry) -> int | None:
    value = entry.value
    if type(value) is int:
        return value if INT64_MIN <= value <= INT64_MAX else None
    if type(value) is str and _REDIS_INT.fullmatch(value):
        number = int(value)
        return number if INT64_MIN <= number <= INT64_MAX else None
    return None


def check_quota(
    quota: Quota,
    used: tuple[int, int],
    owner: str,
    key: str,
    writes: list[tuple[_Entry | None, int]],
) -> None:
    """Refuse (``QuotaExceeded``) writes that would take ``owner`` past ``quota``, given
    its ``used`` (keys, bytes); ``writes`` are (the entry replaced or None, new size)."""
    add_keys = add_bytes = 0
    for old, size in writes:
        if old is not None and old.owner == owner:
            add_bytes += size - old.size
        else:
            add_keys += 1
            add_bytes += size
    keys_used, bytes_used = used
    what = f"writing {key!r}" if len(writes) == 1 else f"writing {len(writes)} keys"
    if add_keys > 0 and quota.max_keys is not None and keys_used + add_keys > quota.max_keys:
        raise QuotaExceeded(
            f"quota exceeded: owner {owner!r} may hold {quota.max_keys} keys, "
            f"holds {keys_used}, {what} adds {add_keys}"
        )
    limit = quota.max_bytes
    if add_bytes > 0 and limit is not None and bytes_used + add_bytes > limit:
        raise QuotaExceeded(
            f"quota exceeded: owner {owner!r} may use {limit} bytes, "
            f"uses {bytes_used}, {what} adds {add_bytes}"
        )
