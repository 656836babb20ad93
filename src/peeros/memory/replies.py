"""What the Redis command layer (:mod:`peeros.memory.commands`) says and how it maps
bytes: per-connection state, Redis 7's canned errors, key/value text codecs."""

from __future__ import annotations

import json
from dataclasses import dataclass

from peeros.memory.kv import JSONValue
from peeros.memory.resp import bulk, error

REDIS_VERSION = "7.0.0"

NOAUTH = error("NOAUTH Authentication required.")
WRONGPASS = error("WRONGPASS invalid username-password pair or user is disabled.")
SYNTAX = error("ERR syntax error")
NOT_INT = error("ERR value is not an integer or out of range")
OVERFLOW = error("ERR increment or decrement would overflow")
NOPROTO = error("NOPROTO sorry, this protocol version is not supported.")
NOAUTH_HELLO = error(
    "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
    "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
    "select the RESP protocol version at the same time"
)
# What redis-benchmark and redis-cli ask for at start-up (CONFIG GET save / appendonly).
CONFIG = {"save": "", "appendonly": "no", "databases": "1", "maxmemory": "0"}


@dataclass(slots=True)
class Session:
    """Per-connection state; the server keeps one per client."""

    authenticated: bool = False
    db: int = 0
    closing: bool = False  # QUIT was received: reply, then close
    protocol: int = 2  # 3 after HELLO 3


def from_resp(raw: bytes) -> str:
    """Bytes from a client to the store's str (UTF-8, surrogateescape)."""
    return raw.decode("utf-8", "surrogateescape")


def to_resp(text: str) -> bytes:
    """Inverse of ``from_resp``; other lone surrogates (from JSON) are passed as-is."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def value_reply(value: JSONValue) -> bytes:
    if type(value) is not str:
        value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return bulk(to_resp(value))


def cstr(raw: bytes, limit: int) -> bytes:
    """What C's ``%.*s`` prints: up to a NUL, at most ``limit`` bytes."""
    return raw.split(b"\0", 1)[0][:limit]


def unknown_command(args: list[bytes]) -> bytes:
    tail = b""
    for arg in args[1:]:
        if len(tail) >= 128:
            break
        tail += b"'" + cstr(arg, 128 - len(tail)) + b"' "
    name = cstr(args[0], 128)
    return error(b"ERR unknown command '" + name + b"', with args beginning with: " + tail)


def unknown_subcommand(args: list[bytes]) -> bytes:
    return error(
        b"ERR unknown subcommand '" + cstr(args[1], 128) + b"'. Try " + args[0].upper() + b" HELP."
    )


def wrong_arity(name: str) -> bytes:
    return error(f"ERR wrong number of arguments for '{name}' command")
