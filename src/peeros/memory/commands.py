"""The Redis command layer: ``list[bytes]`` in, one encoded RESP2 reply out.

Why pure: the asyncio server only feeds ``RespParser`` and writes what ``execute``
returns, so every reply byte is unit-tested here. Replies and error texts follow
Redis 7 (``server.c`` ``processCommand``, ``t_string.c``, ``expire.c``) so that
redis-cli, redis-py and redis-benchmark run unchanged; the wire format is the RESP
spec, https://redis.io/docs/reference/protocol-spec/ .

Order of checks, as Redis: unknown command, then arity, then authentication
(``-NOAUTH``); only AUTH, QUIT and HELLO run unauthenticated. ``HELLO 2|3 [AUTH u p]``
selects the protocol (RESP3 only changes how nulls are written, see ``resp3.py``).

Values: the store holds JSON, so the CLI/API and RESP see the same data. SET stores
the bytes as a JSON *string* decoded as UTF-8 with ``surrogateescape`` (PEP 383):
bytes that are not valid UTF-8 become lone surrogates U+DC80..U+DCFF and GET
re-encodes them exactly, so binary values round-trip byte for byte while text stays
readable JSON. Keys use the same mapping. GET of a non-string JSON value returns
its compact JSON (``5``, ``[1,2]``, ``null``). INCR accepts ints and strings
holding integers and stores the result as a JSON int. Owner of RESP writes is
``owner`` (default ``"local"``). After QUIT, ``session.closing`` is set: the caller
sends the reply and closes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from peeros import __version__
from peeros.memory.kv import (
    INT64_MAX,
    MISSING,
    IntegerOverflow,
    KeyNotFound,
    KVStore,
    MemoryStoreError,
    WrongType,
    compile_glob,
)
from peeros.memory.replies import (
    CONFIG,
    NOAUTH,
    NOAUTH_HELLO,
    NOPROTO,
    NOT_INT,
    OVERFLOW,
    REDIS_VERSION,
    SYNTAX,
    WRONGPASS,
    Session,
    from_resp,
    to_resp,
    unknown_command,
    unknown_subcommand,
    value_reply,
    wrong_arity,
)
from peeros.memory.resp import (
    EMPTY_ARRAY,
    NULL_BULK,
    OK,
    PONG,
    array,
    bulk,
    error,
    integer,
    parse_integer,
)
from peeros.memory.resp3 import hello_reply, to_resp3

__all__ = ["REDIS_VERSION", "CommandProcessor", "Session", "from_resp", "to_resp"]

_Handler = Callable[["Session", list[bytes]], bytes]


class CommandProcessor:
    """Executes Redis commands against a ``KVStore``; one instance per server."""

    def __init__(
        self,
        store: KVStore,
        token_checker: Callable[[bytes], bool],
        *,
        owner: str = "local",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``token_checker`` should compare in constant time (``hmac.compare_digest``)."""
        self._store = store
        self._check_token = token_checker
        self._owner = owner
        self._clock = clock
        self._started = clock()
        self.commands_processed = 0
        # name -> (handler, Redis arity: n = exactly n args, -n = at least n, no-auth)
        self._table: dict[bytes, tuple[_Handler, int, bool]] = {
            b"auth": (self._auth, -2, True),
            b"hello": (self._hello, -1, True),
            b"quit": (self._quit, -1, True),
            b"get": (self._get, 2, False),
            b"set": (self._set, -3, False),
            b"del": (self._del, -2, False),
            b"exists": (self._exists, -2, False),
            b"keys": (self._keys, 2, False),
            b"expire": (self._expire, -3, False),
            b"pexpire": (self._expire, -3, False),
            b"ttl": (self._ttl, 2, False),
            b"pttl": (self._ttl, 2, False),
            b"incr": (self._incr, 2, False),
            b"decr": (self._incr, 2, False),
            b"incrby": (self._incr, 3, False),
            b"decrby": (self._incr, 3, False),
            b"mget": (self._mget, -2, False),
            b"mset": (self._mset, -3, False),
            b"ping": (self._ping, -1, False),
            b"echo": (lambda s, a: bulk(a[1]), 2, False),
            b"info": (self._info, -1, False),
            b"dbsize": (lambda s, a: integer(self._store.dbsize()), 1, False),
            b"flushdb": (self._flush, -1, False),
            b"flushall": (self._flush, -1, False),
            b"select": (self._select, 2, False),
            b"command": (self._command, -1, False),
            b"config": (self._config, -2, False),
        }

    def execute(self, session: Session, args: list[bytes]) -> bytes:
        """Run one command (``args`` non-empty, as ``RespParser`` yields) → reply."""
        name = args[0].lower()
        entry = self._table.get(name)
        if entry is None:
            return unknown_command(args)
        handler, arity, no_auth = entry
        if (len(args) != arity) if arity > 0 else (len(args) < -arity):
            return wrong_arity(name.decode())
        if not (session.authenticated or no_auth):
            return NOAUTH
        self.commands_processed += 1
        try:
            reply = handler(session, args)
            return to_resp3(reply) if session.protocol == 3 else reply
        except WrongType:
            return NOT_INT
        except IntegerOverflow:
            return OVERFLOW
        except MemoryStoreError as exc:  # quota (message starts "quota exceeded: "), key
            return error(f"ERR {exc}")

    # -- connection ---------------------------------------------------------------

    def _auth(self, session: Session, args: list[bytes]) -> bytes:
        if len(args) > 3:
            return SYNTAX
        if (len(args) == 3 and args[1] != b"default") or not self._check_token(args[-1]):
            return WRONGPASS
        session.authenticated = True
        return OK

    def _hello(self, session: Session, args: list[bytes]) -> bytes:
        """``HELLO [protover [AUTH username password] [SETNAME name]]`` (Redis 6+)."""
        protocol = session.protocol
        if len(args) > 1:
            parsed = parse_integer(args[1])
            if parsed is None:
                return error("ERR Protocol version is not an integer or out of range")
            if parsed not in (2, 3):
                return NOPROTO
            protocol = parsed
        i = 2
        authenticated = session.authenticated
        while i < len(args):
            option = args[i].lower()
            if option == b"auth" and i + 2 < len(args):
                if args[i + 1] != b"default" or not self._check_token(args[i + 2]):
                    return WRONGPASS
                authenticated = True
                i += 3
            elif option == b"setname" and i + 1 < len(args):
                i += 2
            else:
                return error(f"ERR Syntax error in HELLO option '{from_resp(args[i])}'")
        if not authenticated:
            return NOAUTH_HELLO
        session.authenticated = True
        session.protocol = protocol
        return hello_reply(protocol, id(session) & 0xFFFF)

    def _quit(self, session: Session, args: list[bytes]) -> bytes:
        session.closing = True
        return OK

    def _ping(self, session: Session, args: list[bytes]) -> bytes:
        if len(args) > 2:
            return wrong_arity("ping")
        return PONG if len(args) == 1 else bulk(args[1])

    def _select(self, session: Session, args: list[bytes]) -> bytes:
        index = parse_integer(args[1])
        if index is None:
            return error("ERR invalid DB index")
        if index != 0:
            return error("ERR DB index is out of range")
        session.db = index
        return OK

    # -- strings ------------------------------------------------------------------

    def _get(self, session: Session, args: list[bytes]) -> bytes:
        value = self._store.get_or(from_resp(args[1]), MISSING)
        return NULL_BULK if value is MISSING else value_reply(value)

    def _set(self, session: Session, args: list[bytes]) -> bytes:
        nx = xx = get = keep_ttl = False
        unit: bytes | None = None
        amount = b""
        i = 3
        while i < len(args):
            option = args[i].upper()
            has_next = i + 1 < len(args)
            if option == b"NX" and not xx:
                nx = True
            elif option == b"XX" and not nx:
                xx = True
            elif option == b"GET":
                get = True
            elif option == b"KEEPTTL" and unit is None:
                keep_ttl = True
            elif option in (b"EX", b"PX") and not keep_ttl and unit in (None, option) and has_next:
                unit, amount = option, args[i + 1]
                i += 1
            else:
                return SYNTAX
            i += 1
        ttl: float | None = None
        if unit is not None:
            number = parse_integer(amount)
            if number is None:
                return NOT_INT
            if number <= 0 or (unit == b"EX" and number > INT64_MAX // 1000):
                return error("ERR invalid expire time in 'set' command")
            ttl = number if unit == b"EX" else number / 1000
        key, value = from_resp(args[1]), from_resp(args[2])
        done, old = self._store.set_and_get(
            key, value, owner=self._owner, ttl=ttl, nx=nx, xx=xx, keep_ttl=keep_ttl
        )
        if get:
            return NULL_BULK if old is MISSING else value_reply(old)
        return OK if done else NULL_BULK

    def _incr(self, session: Session, args: list[bytes]) -> bytes:
        name = args[0].lower()
        delta = 1 if len(args) == 2 else parse_integer(args[2])
        if delta is None:
            return NOT_INT
        if name.startswith(b"decr"):
            if delta == -INT64_MAX - 1:
                return error("ERR decrement would overflow")
            delta = -delta
        return integer(self._store.incrby(from_resp(args[1]), delta, owner=self._owner))

    def _mget(self, session: Session, args: list[bytes]) -> bytes:
        values = self._store.mget([from_resp(k) for k in args[1:]], MISSING)
        replies = [NULL_BULK if v is MISSING else value_reply(v) for v in values]
        return b"*%d\r\n" % len(replies) + b"".join(replies)

    def _mset(self, session: Session, args: list[bytes]) -> bytes:
        if len(args) % 2 == 0:
            return wrong_arity("mset")
        pairs = {from_resp(args[i]): from_resp(args[i + 1]) for i in range(1, len(args), 2)}
        self._store.mset(pairs, self._owner)
        return OK

    # -- keyspace -----------------------------------------------------------------

    def _del(self, session: Session, args: list[bytes]) -> bytes:
        return integer(self._store.delete(*map(from_resp, args[1:])))

    def _exists(self, session: Session, args: list[bytes]) -> bytes:
        return integer(self._store.exists(*map(from_resp, args[1:])))

    def _keys(self, session: Session, args: list[bytes]) -> bytes:
        return array([to_resp(k) for k in self._store.keys(from_resp(args[1]))])

    def _expire(self, session: Session, args: list[bytes]) -> bytes:
        name = args[0].lower().decode()
        if len(args) > 3:  # NX/XX/GT/LT are not supported
            return error(b"ERR Unsupported option " + args[3])
        number = parse_integer(args[2])
        if number is None:
            return NOT_INT
        if name == "expire" and abs(number) > INT64_MAX // 1000:
            return error(f"ERR invalid expire time in '{name}' command")
        seconds = number if name == "expire" else number / 1000
        return integer(int(self._store.expire(from_resp(args[1]), seconds)))

    def _ttl(self, session: Session, args: list[bytes]) -> bytes:
        try:
            remaining = self._store.ttl(from_resp(args[1]))
        except KeyNotFound:
            return integer(-2)
        if remaining is None:
            return integer(-1)
        ms = max(0, round(remaining * 1000))
        return integer(ms if args[0].lower() == b"pttl" else (ms + 500) // 1000)

    def _flush(self, session: Session, args: list[bytes]) -> bytes:
        if len(args) > 2 or (len(args) == 2 and args[1].upper() not in (b"ASYNC", b"SYNC")):
            return SYNTAX
        self._store.flush()
        return OK

    # -- introspection --------------------------------------------------------------

    def _info(self, session: Session, args: list[bytes]) -> bytes:
        stats = self._store.stats()
        uptime = int(self._clock() - self._started)
        sections = {
            "server": [
                f"redis_version:{REDIS_VERSION}",
                "redis_mode:standalone",
                f"peeros_version:{__version__}",
                "arch_bits:64",
                f"uptime_in_seconds:{uptime}",
                f"uptime_in_days:{uptime // 86400}",
            ],
            "memory": [f"used_memory:{stats.bytes}", "maxmemory_policy:noeviction"],
            "stats": [
                f"total_commands_processed:{self.commands_processed}",
                f"expired_keys:{stats.expired}",
                f"keyspace_hits:{stats.hits}",
                f"keyspace_misses:{stats.misses}",
            ],
            "keyspace": [f"db0:keys={stats.keys},expires={stats.expires},avg_ttl=0"]
            if stats.keys
            else [],
        }
        wanted = {a.decode("latin-1").lower() for a in args[1:]}
        if not wanted or wanted & {"all", "default", "everything"}:
            wanted = set(sections)
        text = "\r\n".join(
            "\r\n".join([f"# {name.capitalize()}", *lines]) + "\r\n"
            for name, lines in sections.items()
            if name in wanted
        )
        return bulk(text.encode())

    def _command(self, session: Session, args: list[bytes]) -> bytes:
        sub = args[1].lower() if len(args) > 1 else b""
        if sub in (b"", b"docs"):  # no docs: redis-cli then just shows no hints
            return EMPTY_ARRAY
        if sub == b"count":
            return integer(len(self._table))
        if sub == b"list":
            return array(sorted(self._table))
        if sub == b"info":
            return array([None] * (len(args) - 2))
        return unknown_subcommand(args)

    def _config(self, session: Session, args: list[bytes]) -> bytes:
        if args[1].lower() != b"get":
            return unknown_subcommand(args)
        if len(args) < 3:
            return wrong_arity("config|get")
        reply: list[bytes] = []
        for name, value in CONFIG.items():
            if any(compile_glob(p.decode("latin-1").lower()).fullmatch(name) for p in args[2:]):
                reply += [name.encode(), value.encode()]
        return array(reply)
