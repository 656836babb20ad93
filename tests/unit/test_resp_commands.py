"""CommandProcessor: every command's exact Redis reply bytes, auth, errors, quotas."""

from __future__ import annotations

import hmac

import pytest

from peeros.memory.commands import CommandProcessor, Session
from peeros.memory.kv import KVStore
from peeros.memory.resp import RespParser, array

TOKEN = b"s3cret"


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


class Client:
    """One connection: a session plus helpers to send commands as str or bytes."""

    def __init__(self, store: KVStore, clock: FakeClock, authenticated: bool = True) -> None:
        self.store = store
        self.processor = CommandProcessor(
            store, lambda token: hmac.compare_digest(token, TOKEN), clock=clock
        )
        self.session = Session(authenticated=authenticated)

    def __call__(self, *args: str | bytes) -> bytes:
        raw = [a if isinstance(a, bytes) else a.encode() for a in args]
        return self.processor.execute(self.session, raw)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> KVStore:
    return KVStore(clock=clock)


@pytest.fixture
def r(store: KVStore, clock: FakeClock) -> Client:
    return Client(store, clock)


@pytest.fixture
def anon(store: KVStore, clock: FakeClock) -> Client:
    return Client(store, clock, authenticated=False)


NOAUTH = b"-NOAUTH Authentication required.\r\n"
WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
SYNTAX = b"-ERR syntax error\r\n"
NOT_INT = b"-ERR value is not an integer or out of range\r\n"


# -- authentication --------------------------------------------------------------------


@pytest.mark.parametrize("command", [["GET", "k"], ["PING"], ["SET", "k", "v"], ["KEYS", "*"]])
def test_commands_before_auth_get_noauth(anon: Client, command: list[str]) -> None:
    assert anon(*command) == NOAUTH


def test_auth_with_token(anon: Client) -> None:
    assert anon("AUTH", "wrong") == WRONGPASS
    assert anon("PING") == NOAUTH
    assert anon("AUTH", "s3cret") == b"+OK\r\n"
    assert anon("PING") == b"+PONG\r\n"
    assert anon("AUTH", "wrong") == WRONGPASS
    assert anon.session.authenticated  # a failed AUTH does not log out, as Redis


def test_auth_with_username(anon: Client) -> None:
    assert anon("AUTH", "admin", "s3cret") == WRONGPASS
    assert anon("AUTH", "default", "s3cret") == b"+OK\r\n"


def test_auth_arity_and_syntax(anon: Client) -> None:
    assert anon("AUTH") == b"-ERR wrong number of arguments for 'auth' command\r\n"
    assert anon("AUTH", "a", "b", "c") == SYNTAX


def test_quit_and_hello_work_unauthenticated(anon: Client) -> None:
    assert anon("HELLO", "3").startswith(b"-NOAUTH HELLO must be called with the client already")
    assert anon("HELLO", "4") == b"-NOPROTO sorry, this protocol version is not supported.\r\n"
    assert anon("HELLO", "3", "AUTH", "default", "wrong") == WRONGPASS
    assert anon.session.protocol == 2 and not anon.session.authenticated
    assert anon("QUIT") == b"+OK\r\n"
    assert anon.session.closing


def test_hello_3_with_auth_switches_to_resp3_nulls(anon: Client) -> None:
    """redis-py 8 opens every connection with ``HELLO 3 AUTH default <password>``."""
    reply = anon("HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "app")
    assert reply.startswith(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n")
    assert b"$5\r\nproto\r\n:3\r\n" in reply
    assert anon.session.authenticated and anon.session.protocol == 3
    assert anon("GET", "missing") == b"_\r\n"
    anon("SET", "a", "$-1\r\n")  # a value that looks like a RESP2 null stays intact
    assert anon("MGET", "a", "missing") == b"*2\r\n$5\r\n$-1\r\n\r\n_\r\n"
    assert anon("HELLO", "2").startswith(b"*14\r\n")
    assert anon("GET", "missing") == b"$-1\r\n"


def test_unknown_command_and_arity_come_before_auth(anon: Client) -> None:
    # Redis 7 processCommand checks existence, then arity, then authentication.
    assert anon("FOO") == b"-ERR unknown command 'FOO', with args beginning with: \r\n"
    assert anon("GET") == b"-ERR wrong number of arguments for 'get' command\r\n"


# -- generic errors --------------------------------------------------------------------


def test_unknown_command_message(r: Client) -> None:
    assert r("foo", "a", "b c") == (
        b"-ERR unknown command 'foo', with args beginning with: 'a' 'b c' \r\n"
    )
    assert r("x\r\ny", "a\nb") == (
        b"-ERR unknown command 'x  y', with args beginning with: 'a b' \r\n"
    )
    reply = r("foo", "a" * 100, "b" * 100, "c")
    assert reply == (
        b"-ERR unknown command 'foo', with args beginning with: '"
        + b"a" * 100
        + b"' '"
        + b"b" * 25
        + b"' \r\n"
    )


@pytest.mark.parametrize(
    ("command", "name"),
    [
        (["GET"], "get"),
        (["GeT", "a", "b"], "get"),
        (["SET", "k"], "set"),
        (["DEL"], "del"),
        (["INCRBY", "k"], "incrby"),
        (["MSET", "a", "1", "b"], "mset"),
        (["PING", "a", "b"], "ping"),
        (["DBSIZE", "x"], "dbsize"),
        (["CONFIG"], "config"),
        (["CONFIG", "GET"], "config|get"),
    ],
)
def test_wrong_arity(r: Client, command: list[str], name: str) -> None:
    assert r(*command) == b"-ERR wrong number of arguments for '%s' command\r\n" % name.encode()


# -- strings ---------------------------------------------------------------------------


def test_set_and_get(r: Client, store: KVStore) -> None:
    assert r("GET", "k") == b"$-1\r\n"
    assert r("SET", "k", "hello") == b"+OK\r\n"
    assert r("get", "k") == b"$5\r\nhello\r\n"
    assert store.get("k") == "hello"  # a JSON string, as the API sees it


def test_binary_values_and_keys_round_trip(r: Client, store: KVStore) -> None:
    blob = bytes(range(256))
    assert r("SET", b"\xff\x00key", blob) == b"+OK\r\n"
    assert r("GET", b"\xff\x00key") == b"$256\r\n" + blob + b"\r\n"
    assert r("KEYS", "*") == b"*1\r\n$5\r\n\xff\x00key\r\n"
    assert store.get("\udcff\x00key") == blob.decode("utf-8", "surrogateescape")


def test_get_of_non_string_json_returns_compact_json(r: Client, store: KVStore) -> None:
    store.set("n", 5, owner="peer1")
    store.set("l", [1, "é", None], owner="peer1")
    store.set("z", None, owner="peer1")
    store.set("d", {"a": True}, owner="peer1")
    assert r("GET", "n") == b"$1\r\n5\r\n"
    assert r("GET", "l") == b'$13\r\n[1,"\xc3\xa9",null]\r\n'
    assert r("GET", "z") == b"$4\r\nnull\r\n"
    assert r("MGET", "d", "nope") == b'*2\r\n$10\r\n{"a":true}\r\n$-1\r\n'


def test_set_options(r: Client, clock: FakeClock) -> None:
    assert r("SET", "k", "v", "XX") == b"$-1\r\n"
    assert r("SET", "k", "v", "nx") == b"+OK\r\n"
    assert r("SET", "k", "w", "NX") == b"$-1\r\n"
    assert r("SET", "k", "w", "XX", "GET") == b"$1\r\nv\r\n"
    assert r("SET", "new", "x", "GET") == b"$-1\r\n"
    assert r("SET", "k", "a", "EX", "10") == b"+OK\r\n"
    assert r("TTL", "k") == b":10\r\n"
    assert r("SET", "k", "b", "KEEPTTL") == b"+OK\r\n"
    assert r("PTTL", "k") == b":10000\r\n"
    assert r("SET", "k", "c", "PX", "1500") == b"+OK\r\n"
    assert r("PTTL", "k") == b":1500\r\n"
    clock.now += 1.5
    assert r("GET", "k") == b"$-1\r\n"


@pytest.mark.parametrize(
    ("options", "reply"),
    [
        (["EX"], SYNTAX),
        (["NX", "XX"], SYNTAX),
        (["EX", "1", "PX", "1"], SYNTAX),
        (["KEEPTTL", "EX", "1"], SYNTAX),
        (["EX", "1", "KEEPTTL"], SYNTAX),
        (["BOGUS"], SYNTAX),
        (["EX", "abc"], NOT_INT),
        (["EX", "1.5"], NOT_INT),
        (["EX", "0"], b"-ERR invalid expire time in 'set' command\r\n"),
        (["PX", "-5"], b"-ERR invalid expire time in 'set' command\r\n"),
        (["EX", "9223372036854775807"], b"-ERR invalid expire time in 'set' command\r\n"),
    ],
)
def test_set_option_errors(r: Client, options: list[str], reply: bytes) -> None:
    assert r("SET", "k", "v", *options) == reply
    assert r("EXISTS", "k") == b":0\r\n"


def test_incr_family(r: Client, store: KVStore) -> None:
    assert r("INCR", "n") == b":1\r\n"
    assert r("INCRBY", "n", "41") == b":42\r\n"
    assert r("DECR", "n") == b":41\r\n"
    assert r("DECRBY", "n", "-9") == b":50\r\n"
    assert store.get("n") == 50
    assert r("SET", "s", "10") == b"+OK\r\n"
    assert r("INCR", "s") == b":11\r\n"
    assert store.get("s") == 11  # stored as a JSON int
    assert r("GET", "s") == b"$2\r\n11\r\n"


def test_incr_errors(r: Client) -> None:
    r("SET", "s", "abc")
    assert r("INCR", "s") == NOT_INT
    assert r("INCRBY", "n", "x") == NOT_INT
    r("SET", "max", "9223372036854775807")
    assert r("INCR", "max") == b"-ERR increment or decrement would overflow\r\n"
    assert r("DECRBY", "n", "-9223372036854775808") == b"-ERR decrement would overflow\r\n"
    assert r("GET", "max") == b"$19\r\n9223372036854775807\r\n"


def test_mget_mset(r: Client) -> None:
    assert r("MSET", "a", "1", "b", "2") == b"+OK\r\n"
    assert r("MGET", "a", "nope", "b") == b"*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n"


# -- keyspace --------------------------------------------------------------------------


def test_del_exists_keys_dbsize_flush(r: Client) -> None:
    r("MSET", "a", "1", "b", "2", "c", "3")
    assert r("EXISTS", "a", "a", "z") == b":2\r\n"
    assert r("DEL", "a", "z") == b":1\r\n"
    assert r("KEYS", "*") == b"*2\r\n$1\r\nb\r\n$1\r\nc\r\n"
    assert r("KEYS", "[^b]") == b"*1\r\n$1\r\nc\r\n"
    assert r("DBSIZE") == b":2\r\n"
    assert r("FLUSHDB") == b"+OK\r\n"
    assert r("DBSIZE") == b":0\r\n"
    r("SET", "a", "1")
    assert r("FLUSHALL", "async") == b"+OK\r\n"
    assert r("FLUSHDB", "later") == SYNTAX
    assert r("KEYS", "*") == b"*0\r\n"


def test_expire_ttl_pttl(r: Client, clock: FakeClock) -> None:
    assert r("TTL", "k") == b":-2\r\n"
    assert r("PTTL", "k") == b":-2\r\n"
    assert r("EXPIRE", "k", "10") == b":0\r\n"
    r("SET", "k", "v")
    assert r("TTL", "k") == b":-1\r\n"
    assert r("PTTL", "k") == b":-1\r\n"
    assert r("EXPIRE", "k", "10") == b":1\r\n"
    clock.now += 0.4
    assert r("TTL", "k") == b":10\r\n"  # rounded, as Redis
    assert r("PTTL", "k") == b":9600\r\n"
    assert r("PEXPIRE", "k", "2500") == b":1\r\n"
    assert r("PTTL", "k") == b":2500\r\n"
    assert r("EXPIRE", "k", "x") == NOT_INT
    assert r("EXPIRE", "k", "5", "NX") == b"-ERR Unsupported option NX\r\n"
    assert r("EXPIRE", "k", "9223372036854775807") == (
        b"-ERR invalid expire time in 'expire' command\r\n"
    )
    assert r("EXPIRE", "k", "-1") == b":1\r\n"
    assert r("EXISTS", "k") == b":0\r\n"


# -- connection and introspection ------------------------------------------------------


def test_ping_echo_select(r: Client) -> None:
    assert r("PING") == b"+PONG\r\n"
    assert r("PING", "hi") == b"$2\r\nhi\r\n"
    assert r("ECHO", "a b") == b"$3\r\na b\r\n"
    assert r("SELECT", "0") == b"+OK\r\n"
    assert r("SELECT", "1") == b"-ERR DB index is out of range\r\n"
    assert r("SELECT", "x") == b"-ERR invalid DB index\r\n"


def test_info(r: Client, clock: FakeClock) -> None:
    body = r("INFO")
    assert body.startswith(b"$")
    text = body.split(b"\r\n", 1)[1]
    assert text.startswith(b"# Server\r\nredis_version:7.0.0\r\n")
    assert b"# Keyspace\r\n" in text
    assert b"db0:" not in text  # Redis omits empty databases
    r("SET", "a", "1", "EX", "100")
    r("SET", "b", "2")
    clock.now += 5
    assert r("INFO", "keyspace") == (b"$44\r\n# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\n\r\n")
    server = r("INFO", "SERVER")
    assert b"uptime_in_seconds:5\r\n" in server
    assert b"# Keyspace" not in server
    assert r("INFO", "nosuchsection") == b"$0\r\n\r\n"


def test_command_and_config_for_client_startup(r: Client) -> None:
    assert r("COMMAND") == b"*0\r\n"
    assert r("COMMAND", "DOCS") == b"*0\r\n"
    assert r("COMMAND", "COUNT").startswith(b":")
    assert r("COMMAND", "INFO", "get") == b"*1\r\n$-1\r\n"
    assert r("COMMAND", "nope") == b"-ERR unknown subcommand 'nope'. Try COMMAND HELP.\r\n"
    assert r("CONFIG", "GET", "save") == b"*2\r\n$4\r\nsave\r\n$0\r\n\r\n"
    assert r("CONFIG", "GET", "appendonly") == b"*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n"
    assert r("CONFIG", "GET", "nosuch") == b"*0\r\n"
    assert r("CONFIG", "GET", "SAVE", "append*") == (
        b"*4\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$2\r\nno\r\n"
    )
    assert r("CONFIG", "SET", "save", "") == (
        b"-ERR unknown subcommand 'SET'. Try CONFIG HELP.\r\n"
    )


def test_redis_benchmark_start_up_through_the_parser(r: Client) -> None:
    parser = RespParser()
    parser.feed(
        array([b"AUTH", TOKEN])
        + array([b"CONFIG", b"GET", b"save"])
        + array([b"CONFIG", b"GET", b"appendonly"])
        + b"PING\r\n"
    )
    r.session.authenticated = False
    replies = [r.processor.execute(r.session, command) for command in parser.commands()]
    assert replies == [
        b"+OK\r\n",
        b"*2\r\n$4\r\nsave\r\n$0\r\n\r\n",
        b"*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n",
        b"+PONG\r\n",
    ]


# -- quotas ----------------------------------------------------------------------------


def test_quota_refusal_changes_nothing(clock: FakeClock) -> None:
    store = KVStore(max_keys=2, clock=clock)
    r = Client(store, clock)
    assert r("MSET", "a", "1", "b", "2") == b"+OK\r\n"
    reply = r("SET", "c", "3")
    assert reply.startswith(b"-ERR quota exceeded: owner 'local' may hold 2 keys")
    assert reply.endswith(b"\r\n")
    assert r("MSET", "a", "9", "d", "4").startswith(b"-ERR quota exceeded: ")
    assert r("INCR", "e").startswith(b"-ERR quota exceeded: ")
    assert r("MGET", "a", "b", "c", "d", "e") == (
        b"*5\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n$-1\r\n$-1\r\n"
    )
    assert r("SET", "a", "10") == b"+OK\r\n"  # overwriting its own key is fine


def test_value_too_large_is_a_quota_error(clock: FakeClock) -> None:
    r = Client(KVStore(max_value_bytes=8, clock=clock), clock)
    assert r("SET", "k", "123456789").startswith(b"-ERR quota exceeded: value of key 'k'")
    assert r("EXISTS", "k") == b":0\r\n"


def test_key_too_long_is_an_error(r: Client) -> None:
    assert r("SET", "k" * 1025, "v").startswith(b"-ERR key 'kkk")
