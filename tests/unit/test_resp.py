"""RESP2 codec: framing at every byte boundary, inline commands, Redis error texts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peeros.memory.resp import (
    RespParser,
    RespProtocolError,
    array,
    bulk,
    error,
    integer,
    parse_integer,
    simple,
)

PIPELINE = (
    b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nv\r\nal\r\n"  # CRLF inside a value
    b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"
    b"*0\r\n"  # empty arrays are skipped
    b"PING\r\n"
    b"*1\r\n$0\r\n\r\n"
    b"\r\n"  # a blank inline line is skipped
    b'ECHO "a b"\n'
)
EXPECTED = [
    [b"SET", b"key", b"v\r\nal"],
    [b"GET", b"key"],
    [b"PING"],
    [b""],
    [b"ECHO", b"a b"],
]


def parse_all(*chunks: bytes, **limits: int | bool) -> list[list[bytes]]:
    parser = RespParser(**limits)  # type: ignore[arg-type]
    out: list[list[bytes]] = []
    for chunk in chunks:
        parser.feed(chunk)
        out.extend(parser.commands())
    assert parser.buffered == 0
    return out


def protocol_error(data: bytes, **limits: int | bool) -> str:
    parser = RespParser(**limits)  # type: ignore[arg-type]
    parser.feed(data)
    with pytest.raises(RespProtocolError) as info:
        list(parser.commands())
    return str(info.value)


def test_pipelined_commands() -> None:
    assert parse_all(PIPELINE) == EXPECTED


def test_every_split_point_of_a_pipeline() -> None:
    for cut in range(len(PIPELINE) + 1):
        assert parse_all(PIPELINE[:cut], PIPELINE[cut:]) == EXPECTED, cut


def test_every_split_into_three() -> None:
    n = len(PIPELINE)
    for a in range(0, n + 1, 3):
        for b in range(a, n + 1, 5):
            assert parse_all(PIPELINE[:a], PIPELINE[a:b], PIPELINE[b:]) == EXPECTED, (a, b)


def test_one_byte_at_a_time() -> None:
    assert parse_all(*(PIPELINE[i : i + 1] for i in range(len(PIPELINE)))) == EXPECTED


def test_next_command_is_none_until_complete() -> None:
    parser = RespParser()
    parser.feed(b"*1\r\n$4\r\nPI")
    assert parser.next_command() is None
    assert parser.buffered == 2  # the headers are parsed already
    parser.feed(b"NG\r\n")
    assert parser.next_command() == [b"PING"]
    assert parser.next_command() is None


def test_a_large_bulk_in_many_chunks_is_joined_once() -> None:
    value = bytes(range(256)) * 4096  # 1 MiB
    frame = b"*2\r\n$3\r\nSET\r\n$%d\r\n%b\r\n" % (len(value), value)
    parser = RespParser(authenticated=True)
    parser.feed(frame[:30])
    assert parser.next_command() is None
    for i in range(30, len(frame), 1000):
        parser.feed(frame[i : i + 1000])
        command = parser.next_command()
        if command is None:
            assert len(parser._buf) == 30  # chunks are collected, not re-joined per read
        else:
            assert command == [b"SET", value]
            assert i + 1000 >= len(frame)
            break
    else:
        pytest.fail("command never completed")
    assert parser.buffered == 0


@pytest.mark.parametrize(
    ("line", "args"),
    [
        (b"PING\r\n", [b"PING"]),
        (b"PING\n", [b"PING"]),
        (b"  set   k \t v  \r\n", [b"set", b"k", b"v"]),
        (b'SET k "hello world"\r\n', [b"SET", b"k", b"hello world"]),
        (b'SET k "a\\x41\\n\\"\\\\"\r\n', [b"SET", b"k", b'aA\n"\\']),
        (b"SET k 'it\\'s'\r\n", [b"SET", b"k", b"it's"]),
        (b"SET k 'no \\n escape'\r\n", [b"SET", b"k", b"no \\n escape"]),
        (b'SET k""\r\n', [b"SET", b"k"]),
        (b'ECHO ""\r\n', [b"ECHO", b""]),
    ],
)
def test_inline_commands(line: bytes, args: list[bytes]) -> None:
    assert parse_all(line) == [args]


@pytest.mark.parametrize(
    ("data", "limits", "message"),
    [
        (b"*x\r\n", {}, "Protocol error: invalid multibulk length"),
        (b"*+1\r\n", {}, "Protocol error: invalid multibulk length"),
        (b"*01\r\n", {}, "Protocol error: invalid multibulk length"),
        (b"*3\r\n", {"max_multibulk_len": 2}, "Protocol error: invalid multibulk length"),
        (b"*11\r\n", {}, "Protocol error: unauthenticated multibulk length"),
        (b"*2\r\n:1\r\n", {}, "Protocol error: expected '$', got ':'"),
        (b"*2\r\nx", {}, "Protocol error: expected '$', got 'x'"),
        (b"*1\r\n$-1\r\n", {}, "Protocol error: invalid bulk length"),
        (b"*1\r\n$abc\r\n", {}, "Protocol error: invalid bulk length"),
        (b"*1\r\n$ 3\r\n", {}, "Protocol error: invalid bulk length"),
        (b"*1\r\n$4\r\n", {"max_bulk_len": 3}, "Protocol error: invalid bulk length"),
        (b"*1\r\n$16385\r\n", {}, "Protocol error: unauthenticated bulk length"),
        (b"*1\r\n$3\r\nabcd\r\n", {}, "Protocol error: expected '\\r\\n' after bulk data"),
        (b"x" * 65, {"max_inline_len": 64}, "Protocol error: too big inline request"),
        (b"*" + b"1" * 64, {"max_inline_len": 64}, "Protocol error: too big mbulk count string"),
        (
            b"*1\r\n$" + b"1" * 64,
            {"max_inline_len": 64},
            "Protocol error: too big bulk count string",
        ),
        (b'SET k "abc\r\n', {}, "Protocol error: unbalanced quotes in request"),
        (b'SET k "abc"d\r\n', {}, "Protocol error: unbalanced quotes in request"),
        (b"SET k 'abc\r\n", {}, "Protocol error: unbalanced quotes in request"),
        (b"SET k 'a'b\r\n", {}, "Protocol error: unbalanced quotes in request"),
    ],
)
def test_protocol_errors(data: bytes, limits: dict[str, int], message: str) -> None:
    assert protocol_error(data, **limits) == message


def test_authenticated_parser_lifts_the_pre_auth_limits() -> None:
    args = [b"MSET"] + [b"x" * 20000] * 20
    assert parse_all(array(args), authenticated=True) == [args]


def test_large_lengths_still_respect_configured_limits() -> None:
    assert parse_all(b"*1\r\n$5\r\nhello\r\n", max_bulk_len=5) == [[b"hello"]]
    big = b"*2000\r\n"
    assert protocol_error(big, authenticated=True, max_multibulk_len=1999) == (
        "Protocol error: invalid multibulk length"
    )


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b"0", 0),
        (b"42", 42),
        (b"-7", -7),
        (b"9223372036854775807", 2**63 - 1),
        (b"-9223372036854775808", -(2**63)),
        (b"9223372036854775808", None),
        (b"-9223372036854775809", None),
        (b"", None),
        (b"-", None),
        (b"-0", None),
        (b"007", None),
        (b"+1", None),
        (b" 1", None),
        (b"1.0", None),
        (b"\xd9\xa1", None),  # Arabic-Indic digit one: ASCII digits only
    ],
)
def test_parse_integer_is_redis_strict(raw: bytes, value: int | None) -> None:
    assert parse_integer(raw) == value


def test_encoders() -> None:
    assert simple("OK") == b"+OK\r\n"
    with pytest.raises(ValueError):
        simple("a\r\nb")
    assert error("ERR bad\r\nthing") == b"-ERR bad  thing\r\n"
    assert error(b"WRONGTYPE x") == b"-WRONGTYPE x\r\n"
    assert integer(-5) == b":-5\r\n"
    assert bulk(b"hi") == b"$2\r\nhi\r\n"
    assert bulk(b"") == b"$0\r\n\r\n"
    assert bulk(None) == b"$-1\r\n"
    assert array(None) == b"*-1\r\n"
    assert array([]) == b"*0\r\n"
    assert array([b"a", "é", 3, None, [b"x", []]]) == (
        b"*5\r\n$1\r\na\r\n$2\r\n\xc3\xa9\r\n:3\r\n$-1\r\n*2\r\n$1\r\nx\r\n*0\r\n"
    )
    with pytest.raises(TypeError):
        array([True])


@given(
    commands=st.lists(st.lists(st.binary(max_size=40), min_size=1, max_size=8), max_size=5),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=4),
)
def test_encode_then_parse_round_trips(commands: list[list[bytes]], cuts: list[int]) -> None:
    wire = b"".join(array(command) for command in commands)
    points = sorted({min(c, len(wire)) for c in cuts})
    chunks = [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)], strict=True)]
    assert parse_all(*chunks) == commands
