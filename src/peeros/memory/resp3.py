"""What changes for a client that chose RESP3 with ``HELLO 3``.

Our replies use only types that RESP2 and RESP3 share, except the null: RESP3 spells it
``_\\r\\n`` where RESP2 has ``$-1`` or ``*-1`` (redis-py 8 speaks RESP3 by default and
cannot read the RESP2 null). :func:`to_resp3` walks a well-formed reply and rewrites
nulls at element boundaries only, never inside a bulk string's bytes.
"""

from __future__ import annotations

from peeros.memory.resp import array, bulk, integer

_NULL3 = b"_\r\n"


def to_resp3(reply: bytes) -> bytes:
    if b"-1\r\n" not in reply:
        return reply
    out: list[bytes] = []

    def walk(i: int) -> int:
        kind = reply[i : i + 1]
        eol = reply.index(b"\r\n", i)
        if kind in (b"$", b"*"):
            n = int(reply[i + 1 : eol])
            if n == -1:
                out.append(_NULL3)
                return eol + 2
            if kind == b"$":
                end = eol + 2 + n + 2
                out.append(reply[i:end])
                return end
            out.append(reply[i : eol + 2])
            k = eol + 2
            for _ in range(n):
                k = walk(k)
            return k
        out.append(reply[i : eol + 2])
        return eol + 2

    pos = 0
    while pos < len(reply):
        pos = walk(pos)
    return b"".join(out)


def hello_reply(protocol: int, client_id: int) -> bytes:
    """The server description HELLO answers: a map in RESP3, a flat array in RESP2."""
    fields: list[tuple[bytes, bytes]] = [
        (bulk(b"server"), bulk(b"redis")),
        (bulk(b"version"), bulk(b"7.0.0")),
        (bulk(b"proto"), integer(protocol)),
        (bulk(b"id"), integer(client_id)),
        (bulk(b"mode"), bulk(b"standalone")),
        (bulk(b"role"), bulk(b"master")),
        (bulk(b"modules"), array([])),
    ]
    body = b"".join(k + v for k, v in fields)
    head = b"%%%d\r\n" % len(fields) if protocol == 3 else b"*%d\r\n" % (2 * len(fields))
    return head + body
