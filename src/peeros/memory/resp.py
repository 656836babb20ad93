"""A sans-IO RESP2 codec: bytes in, commands out; replies encoded to bytes.

Why sans-IO (like h11): the parser is tested byte boundary by byte boundary with
no sockets, and the asyncio server only moves bytes. Wire format per the RESP spec,
https://redis.io/docs/reference/protocol-spec/ : clients send either an array of
bulk strings (``*2\\r\\n$3\\r\\nGET\\r\\n$1\\r\\nk\\r\\n``) or an inline command
(``PING\\r\\n``, as typed in telnet or ``nc``). The parsing rules and
error messages mirror Redis 7's ``networking.c`` (``processMultibulkBuffer``,
``processInlineBuffer``, ``sdssplitargs``) so clients see familiar errors.

Protocol errors raise ``RespProtocolError`` whose text is the Redis reply (without
the "-" prefix). The parser's state is then undefined: like Redis, the caller
should send ``error(str(exc))`` and close the connection.

Before a connection is authenticated the parser applies Redis's pre-auth limits
(at most 10 arguments, bulk strings of at most 16384 bytes), so an anonymous
client cannot make us buffer 512 MiB; set ``parser.authenticated = True`` after a
successful AUTH.

Speed (a benchmark compares us with redis-server): ``bytes.find`` for CRLF and
slicing, never a per-byte loop (except for inline commands with quotes, which only
humans type). The buffer is immutable ``bytes`` with a read offset, rebased in
``feed``: a slice *is* the argument (one copy, where a ``bytearray`` needs two) and
length headers are hashable, so common lengths cost one dict lookup. This measured
about 1.7x faster than a ``bytearray`` buffer on pipelined SET/GET.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Final, TypeAlias

RespValue: TypeAlias = bytes | str | int | Sequence["RespValue"] | None

DEFAULT_MAX_BULK_LEN: Final = 512 * 1024 * 1024  # Redis proto-max-bulk-len
DEFAULT_MAX_MULTIBULK_LEN: Final = 1024 * 1024
DEFAULT_MAX_INLINE_LEN: Final = 64 * 1024  # Redis PROTO_INLINE_MAX_SIZE
UNAUTH_MAX_MULTIBULK_LEN: Final = 10
UNAUTH_MAX_BULK_LEN: Final = 16384
_INT64_MAX: Final = 2**63 - 1

OK: Final = b"+OK\r\n"
PONG: Final = b"+PONG\r\n"
NULL_BULK: Final = b"$-1\r\n"
NULL_ARRAY: Final = b"*-1\r\n"
EMPTY_ARRAY: Final = b"*0\r\n"


class RespProtocolError(Exception):
    """Malformed input; ``str(exc)`` is the Redis error text. Reply it, then close."""


def parse_integer(raw: bytes | bytearray) -> int | None:
    """A signed 64-bit integer in Redis ``string2ll`` syntax, else None.

    Stricter than ``int()``: ASCII digits only, no "+", no spaces, no leading
    zeros, no "-0".
    """
    negative = raw[:1] == b"-"
    digits = raw[1:] if negative else raw
    if not digits.isdigit() or len(digits) > 19:
        return None
    if digits[0] == 48 and (negative or len(digits) > 1):
        return None
    value = int(raw)
    return value if -_INT64_MAX - 1 <= value <= _INT64_MAX else None


class RespParser:
    """Incremental parser of client commands; feed bytes, pull ``list[bytes]``."""

    __slots__ = (
        "_args",
        "_buf",
        "_bulk_len",
        "_chunks",
        "_chunks_len",
        "_need",
        "_pos",
        "_remaining",
        "authenticated",
        "max_bulk_len",
        "max_inline_len",
        "max_multibulk_len",
    )

    def __init__(
        self,
        *,
        max_bulk_len: int = DEFAULT_MAX_BULK_LEN,
        max_multibulk_len: int = DEFAULT_MAX_MULTIBULK_LEN,
        max_inline_len: int = DEFAULT_MAX_INLINE_LEN,
        authenticated: bool = False,
    ) -> None:
        self.max_bulk_len = max_bulk_len
        self.max_multibulk_len = max_multibulk_len
        self.max_inline_len = max_inline_len
        self.authenticated = authenticated
        self._buf = b""
        self._pos = 0  # bytes of _buf before this offset are consumed
        self._need = 0  # _buf must reach this length before parsing can progress
        self._chunks: list[bytes] = []  # fed while waiting for a long bulk body
        self._chunks_len = 0
        self._remaining = 0  # bulk strings still expected by the current array
        self._bulk_len = -1  # length of the bulk being read, -1 before its "$" line
        self._args: list[bytes] = []

    @property
    def buffered(self) -> int:
        """Bytes received and not yet parsed (a server may cap this)."""
        return len(self._buf) - self._pos + self._chunks_len

    def feed(self, data: bytes) -> None:
        """Append received bytes.

        The buffer is immutable ``bytes`` (slicing yields arguments with one copy),
        rebased here: the unconsumed tail is joined with the new data. While a
        bulk body is known to be incomplete, chunks are only collected, so a large
        value arriving in many reads is joined once, not once per read.
        """
        size = len(data)
        if self._need > len(self._buf) + self._chunks_len + size:
            self._chunks.append(bytes(data))
            self._chunks_len += size
            return
        pos = self._pos
        if self._chunks:
            self._buf = b"".join([self._buf[pos:], *self._chunks, data])
            self._chunks.clear()
            self._chunks_len = 0
        elif pos >= len(self._buf):
            self._buf = bytes(data)
        else:
            self._buf = self._buf[pos:] + data
        self._need = max(0, self._need - pos)
        self._pos = 0

    def commands(self) -> Iterator[list[bytes]]:
        """Every complete command buffered so far (pipelining)."""
        while (command := self.next_command()) is not None:
            yield command

    def next_command(self) -> list[bytes] | None:
        """The next complete command, or None when more bytes are needed.

        Empty arrays (``*0``, ``*-1``) and blank inline lines are skipped, as Redis.
        """
        buf, pos, end = self._buf, self._pos, len(self._buf)
        remaining, size, args = self._remaining, self._bulk_len, self._args
        max_bulk = self.max_bulk_len
        fast_count = min(UNAUTH_MAX_MULTIBULK_LEN, self.max_multibulk_len)
        try:
            while not remaining:  # at a command boundary
                if pos >= end:
                    return None
                if buf[pos] != 42:  # not '*': an inline command
                    newline = buf.find(b"\n", pos)
                    if newline < 0:
                        if end - pos > self.max_inline_len:
                            raise RespProtocolError("Protocol error: too big inline request")
                        return None
                    stop = newline - 1 if newline > pos and buf[newline - 1] == 13 else newline
                    line, pos = buf[pos:stop], newline + 1
                    quoted = b'"' in line or b"'" in line
                    words = _split_quoted(line) if quoted else line.split()
                    if words:
                        return words
                    continue
                newline = buf.find(b"\r\n", pos)
                if newline < 0:
                    if end - pos > self.max_inline_len:
                        raise RespProtocolError("Protocol error: too big mbulk count string")
                    return None
                raw = buf[pos + 1 : newline]
                remaining = _SMALL.get(raw, -2)
                if remaining > fast_count or remaining == -2:
                    remaining = self._array_length(raw)
                pos = newline + 2
                if remaining < 0:
                    remaining = 0
                args = []
            while remaining:
                if size < 0:  # expecting "$<length>\r\n"
                    if pos >= end:
                        return None
                    if buf[pos] != 36:
                        got = chr(buf[pos])
                        raise RespProtocolError(f"Protocol error: expected '$', got '{got}'")
                    newline = buf.find(b"\r\n", pos)
                    if newline < 0:
                        if end - pos > self.max_inline_len:
                            raise RespProtocolError("Protocol error: too big bulk count string")
                        return None
                    raw = buf[pos + 1 : newline]
                    size = _SMALL.get(raw, -1)
                    if not 0 <= size <= max_bulk:
                        size = self._bulk_length(raw)
                    pos = newline + 2
                stop = pos + size
                if stop + 2 > end:
                    self._need = stop + 2
                    return None
                # Redis skips these two bytes unchecked; checking catches a wrong
                # length at once instead of desynchronising the stream.
                if buf[stop] != 13 or buf[stop + 1] != 10:
                    raise RespProtocolError("Protocol error: expected '\\r\\n' after bulk data")
                args.append(buf[pos:stop])
                pos = stop + 2
                size = -1
                remaining -= 1
            self._need = 0
            if pos >= end:  # drop the buffer now rather than at the next feed
                buf, pos, end = b"", 0, 0
                self._buf = buf
            command, args = args, []
            return command
        finally:
            self._pos, self._remaining, self._bulk_len, self._args = pos, remaining, size, args

    def _array_length(self, raw: bytes) -> int:
        count = parse_integer(raw)
        if count is None or count > self.max_multibulk_len:
            raise RespProtocolError("Protocol error: invalid multibulk length")
        if count > UNAUTH_MAX_MULTIBULK_LEN and not self.authenticated:
            raise RespProtocolError("Protocol error: unauthenticated multibulk length")
        return count

    def _bulk_length(self, raw: bytes) -> int:
        length = parse_integer(raw)
        if length is None or length < 0 or length > self.max_bulk_len:
            raise RespProtocolError("Protocol error: invalid bulk length")
        if length > UNAUTH_MAX_BULK_LEN and not self.authenticated:
            raise RespProtocolError("Protocol error: unauthenticated bulk length")
        return length


# Canonical spellings of small lengths, so the hot path is one dict lookup.
_SMALL: Final = {b"%d" % n: n for n in range(-1, 1024)}

_SPACE: Final = frozenset(b" \t\n\r\v\f")
_TOKEN_END: Final = frozenset(b" \t\n\r\0")
_ESCAPES: Final = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_HEX: Final = frozenset(b"0123456789abcdefABCDEF")


def _split_quoted(line: bytes) -> list[bytes]:
    """Redis ``sdssplitargs``: "double" quotes with \\xHH escapes, 'single' quotes."""
    unbalanced = RespProtocolError("Protocol error: unbalanced quotes in request")
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in _SPACE:
            i += 1
        if i >= n:
            return args
        token = bytearray()
        quote = 0  # 0, '"' (34) or "'" (39)
        while True:
            if i >= n:
                if quote:
                    raise unbalanced
                break
            c = line[i]
            if quote == 34:
                if (
                    c == 92
                    and i + 3 < n
                    and line[i + 1] == 120
                    and {line[i + 2], line[i + 3]} <= _HEX
                ):
                    token.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == 92 and i + 1 < n:
                    i += 1
                    token.append(_ESCAPES.get(line[i], line[i]))
                elif c == 34:
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        raise unbalanced
                    i += 1
                    break
                else:
                    token.append(c)
            elif quote == 39:
                if c == 92 and i + 1 < n and line[i + 1] == 39:
                    i += 1
                    token.append(39)
                elif c == 39:
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        raise unbalanced
                    i += 1
                    break
                else:
                    token.append(c)
            elif c in _TOKEN_END:
                i += 1
                break
            elif c in (34, 39):
                quote = c
            else:
                token.append(c)
            i += 1
        args.append(bytes(token))


def simple(text: str) -> bytes:
    """``+text``; a simple string cannot contain CR or LF."""
    if "\r" in text or "\n" in text:
        raise ValueError("simple strings cannot contain CR or LF")
    return b"+" + text.encode() + b"\r\n"


def error(message: str | bytes) -> bytes:
    """``-message``; the caller includes the prefix ("ERR ...", "WRONGTYPE ...").

    CR and LF become spaces, as Redis's ``addReplyError`` does, so a key name
    quoted in a message cannot break the framing.
    """
    raw = message.encode("utf-8", "replace") if isinstance(message, str) else message
    if b"\r" in raw or b"\n" in raw:
        raw = raw.replace(b"\r", b" ").replace(b"\n", b" ")
    return b"-" + raw + b"\r\n"


def integer(value: int) -> bytes:
    return b":%d\r\n" % value


def bulk(data: bytes | None) -> bytes:
    if data is None:
        return NULL_BULK
    return b"$%d\r\n%b\r\n" % (len(data), data)


def array(items: Sequence[RespValue] | None) -> bytes:
    """Encode nested items: bytes and str (UTF-8) as bulk strings, int, None, lists."""
    if items is None:
        return NULL_ARRAY
    parts = [b"*%d\r\n" % len(items)]
    for item in items:
        if isinstance(item, bytes):
            parts.append(b"$%d\r\n%b\r\n" % (len(item), item))
        elif isinstance(item, str):
            parts.append(bulk(item.encode()))
        elif isinstance(item, bool):
            raise TypeError("RESP2 has no boolean; encode it as an integer explicitly")
        elif isinstance(item, int):
            parts.append(b":%d\r\n" % item)
        elif item is None:
            parts.append(NULL_BULK)
        else:
            parts.append(array(item))
    return b"".join(parts)
