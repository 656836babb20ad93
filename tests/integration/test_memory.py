"""Memory sharing: the store over HTTP (local and remote), quotas, and the Redis front."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from peeros import Client
from peeros.client_memory import MissingKey
from peeros.errors import QuotaExceeded
from peeros.launcher import LocalCluster, NodeProcess
from tests.conftest import FAST_PEER, Nodes, wait_until

JSON_VALUES = [
    None,
    True,
    False,
    0,
    -12,
    2**62,
    3.25,
    "",
    "text \u00e9\u2603",
    [],
    [1, [2, None]],
    {},
    {"a": {"b": [1, "c", {"d": False}]}},
]


def token(peer: NodeProcess) -> str:
    return (peer.data_dir / "api.token").read_text().strip()


def resp_port(peer: NodeProcess) -> int:
    return int(peer.info["resp_address"].rsplit(":", 1)[1])


@pytest.fixture
def r(nodes: Nodes) -> Iterator[tuple[redis.Redis, NodeProcess]]:
    cluster = nodes.cluster(1)
    peer = cluster.peers[0]
    client = redis.Redis(port=resp_port(peer), password=token(peer), decode_responses=True)
    try:
        yield client, peer
    finally:
        client.close()


def test_set_get_delete_keys_locally_with_every_json_type(nodes: Nodes) -> None:
    cluster = nodes.cluster(1)
    with Client(data_dir=cluster.peers[0].data_dir) as c:
        for i, v in enumerate(JSON_VALUES):
            c.memory[f"v{i}"] = v
        assert [c.memory[f"v{i}"] for i in range(len(JSON_VALUES))] == JSON_VALUES
        assert c.memory.keys("v1*") == sorted(
            k for k in (f"v{i}" for i in range(13)) if k.startswith("v1")
        )
        del c.memory["v0"]
        assert "v0" not in c.memory and "v1" in c.memory
        with pytest.raises(KeyError):
            c.memory["v0"]
        with pytest.raises(MissingKey, match="not found"):
            del c.memory["v0"]
        assert c.memory.get("v0", "fallback") == "fallback"


def test_remote_access_by_peer_id_and_by_address(nodes: Nodes) -> None:
    cluster = nodes.cluster(2)
    a, b = cluster.peers
    with Client(data_dir=a.data_dir) as ca, Client(data_dir=b.data_dir) as cb:
        wait_until(lambda: len(ca.peers()) == 2)
        remote = ca.memory.on(b.info["peer_id"])
        remote["shared"] = {"from": "a"}
        entry = ca.memory.on(b.info["address"]).entry("shared")
        assert entry.value == {"from": "a"} and entry.peer_id == b.info["peer_id"]
        assert cb.memory["shared"] == {"from": "a"}  # it really lives on b
        assert "shared" not in ca.memory
        assert remote.keys() == ["shared"]
        del remote["shared"]
        assert cb.memory.keys() == []
        with pytest.raises(MissingKey):
            remote["shared"]


def test_ttl_expiry(nodes: Nodes) -> None:
    cluster = nodes.cluster(1)
    with Client(data_dir=cluster.peers[0].data_dir) as c:
        entry = c.memory.set("short", "lived", ttl=0.5)
        assert entry.ttl == 0.5
        assert 0 < (c.memory.entry("short").ttl or 0) <= 0.5
        c.memory["forever"] = 1
        assert c.memory.entry("forever").ttl is None
        wait_until(lambda: "short" not in c.memory, timeout=5)
        assert "forever" in c.memory


def test_concurrent_incr_from_three_peers_loses_no_update(nodes: Nodes) -> None:
    cluster = nodes.cluster(3)
    target = cluster.peers[0].info["peer_id"]
    errors: list[BaseException] = []

    def hammer(peer: NodeProcess) -> None:
        try:
            with Client(data_dir=peer.data_dir) as c:
                wait_until(lambda: len(c.peers()) == 3)
                for _ in range(1000):
                    c.memory.on(target).incr("counter")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(p,)) for p in cluster.peers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors
    with Client(data_dir=cluster.peers[0].data_dir) as c:
        assert c.memory["counter"] == 3000


def test_quotas_are_per_requesting_peer_and_change_nothing(nodes: Nodes) -> None:
    cluster = nodes.cluster(2, peer_extra=[*FAST_PEER, "--mem-max-keys", "2", "--mem-max-mb", "1"])
    a, b = cluster.peers
    with Client(data_dir=a.data_dir) as ca, Client(data_dir=b.data_dir) as cb:
        wait_until(lambda: len(ca.peers()) == 2)
        ca.memory["k1"] = 1
        ca.memory["k2"] = 2
        with pytest.raises(QuotaExceeded, match="quota exceeded"):
            ca.memory["k3"] = 3
        assert ca.memory.keys() == ["k1", "k2"]
        ca.memory["k1"] = 10  # overwriting does not add a key
        # b's writes on a count against b's own quota, not a's
        on_a = cb.memory.on(a.info["peer_id"])
        on_a["r1"] = "x"
        on_a["r2"] = "y"
        with pytest.raises(QuotaExceeded):
            on_a["r3"] = "z"
        # the byte quota refuses a value that would take the owner over 1 MiB
        with pytest.raises(QuotaExceeded):
            cb.memory["big"] = "x" * (1 << 20)
        assert sorted(ca.memory.keys()) == ["k1", "k2", "r1", "r2"]
        assert ca.memory["k1"] == 10 and "big" not in cb.memory


def test_redis_py_speaks_every_listed_command(r: tuple[redis.Redis, NodeProcess]) -> None:
    rc, peer = r
    assert rc.ping() is True
    assert rc.echo("hi") == "hi"
    assert rc.set("a", "1") is True
    assert rc.get("a") == "1"
    assert rc.set("a", "2", nx=True) is None and rc.get("a") == "1"
    assert rc.set("b", "x", xx=True) is None and rc.get("b") is None
    assert rc.set("b", "x", ex=100) is True and 0 < rc.ttl("b") <= 100
    assert rc.set("c", "y", px=100000) is True and 0 < rc.pttl("c") <= 100000
    assert rc.exists("a", "b", "nope") == 2
    assert sorted(rc.keys("*")) == ["a", "b", "c"]
    assert rc.expire("a", 100) is True and rc.ttl("a") > 0
    assert rc.ttl("nope") == -2
    rc.set("n", "5")
    assert rc.incr("n") == 6 and rc.incrby("n", 10) == 16 and rc.decr("n") == 15
    assert rc.mset({"m1": "v1", "m2": "v2"}) is True
    assert rc.mget("m1", "m2", "nope") == ["v1", "v2", None]
    assert rc.delete("m1", "m2", "nope") == 2
    assert rc.dbsize() == 4
    assert "redis_version" in rc.info()
    assert rc.execute_command("SELECT", "0") is True  # redis-py maps +OK to True
    assert rc.flushdb() is True and rc.dbsize() == 0
    # the same data as the HTTP API sees
    rc.set("shared", "from-redis")
    with Client(data_dir=peer.data_dir) as c:
        assert c.memory["shared"] == "from-redis"
        c.memory["counter"] = 41
        assert rc.incr("counter") == 42
        assert c.memory["counter"] == 42
        c.memory["obj"] = {"x": [1, 2]}
        assert rc.get("obj") == '{"x":[1,2]}'


def test_redis_auth_is_required_and_a_wrong_token_refused(
    r: tuple[redis.Redis, NodeProcess],
) -> None:
    _rc, peer = r
    anonymous = redis.Redis(port=resp_port(peer))
    with pytest.raises(redis.AuthenticationError):
        anonymous.get("x")
    wrong = redis.Redis(port=resp_port(peer), password="nope")
    with pytest.raises(redis.AuthenticationError):
        wrong.ping()
    anonymous.close()
    wrong.close()


def raw_exchange(port: int, payload: bytes, expect_close: bool = False) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        chunks = b""
        s.settimeout(1.0)
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks += data
                if not expect_close and chunks.count(b"\r\n") >= payload.count(b"\r\n*") + 1:
                    break
        except TimeoutError:
            pass
        return chunks


def cmd(*args: str) -> bytes:
    out = f"*{len(args)}\r\n".encode()
    for a in args:
        out += f"${len(a.encode())}\r\n{a}\r\n".encode()
    return out


def test_bad_resp_input_gets_redis_errors_and_changes_nothing(
    r: tuple[redis.Redis, NodeProcess],
) -> None:
    rc, peer = r
    port = resp_port(peer)
    rc.set("word", "hello")
    auth = cmd("AUTH", token(peer))
    # errors that keep the connection usable: the next command still answers
    reply = raw_exchange(port, auth + cmd("FOO", "bar") + cmd("PING"))
    assert b"-ERR unknown command 'FOO', with args beginning with: 'bar'" in reply
    assert reply.endswith(b"+PONG\r\n")
    reply = raw_exchange(port, auth + cmd("GET") + cmd("PING"))
    assert b"-ERR wrong number of arguments for 'get' command" in reply and reply.endswith(
        b"+PONG\r\n"
    )
    reply = raw_exchange(port, auth + cmd("INCR", "word") + cmd("GET", "word"))
    assert b"-ERR value is not an integer or out of range" in reply and reply.endswith(b"hello\r\n")
    reply = raw_exchange(port, auth + cmd("SET", "k", "v", "BOGUS") + cmd("PING"))
    assert b"-ERR syntax error" in reply and reply.endswith(b"+PONG\r\n")
    # protocol errors close the connection, as Redis does
    reply = raw_exchange(port, auth + b"*1\r\n$99999999999\r\n", expect_close=True)
    assert b"-ERR Protocol error: invalid bulk length" in reply
    reply = raw_exchange(port, auth + b"*2\r\n!garbage\r\n", expect_close=True)
    assert b"-ERR Protocol error" in reply
    assert rc.get("word") == "hello" and rc.exists("k") == 0


def test_redis_cli_works_unchanged(r: tuple[redis.Redis, NodeProcess]) -> None:
    _rc, peer = r
    base = ["redis-cli", "-p", str(resp_port(peer)), "-a", token(peer), "--no-auth-warning"]
    assert (
        subprocess.run([*base, "SET", "cli", "works"], capture_output=True, text=True).stdout
        == "OK\n"
    )
    assert subprocess.run([*base, "GET", "cli"], capture_output=True, text=True).stdout == "works\n"


def test_a_restart_empties_the_store_and_status_says_why(nodes: Nodes) -> None:
    from peeros.launcher import start_peer, stop

    cluster: LocalCluster = nodes.cluster(1)
    peer = cluster.peers[0]
    with Client(data_dir=peer.data_dir) as c:
        c.memory["volatile"] = True
        st = c.status()
        assert st.memory_keys == 1 and "lost on restart" in st.memory_store
        assert st.resp_address == peer.info["resp_address"]
    stop([peer])
    again = start_peer(peer.data_dir, cluster.tracker_address, None, extra=FAST_PEER)
    nodes.started.append(again)
    with Client(data_dir=Path(again.data_dir)) as c:
        assert c.memory.keys() == [] and c.status().memory_keys == 0
        c.memory["fresh"] = 1  # and everything else still works
        assert c.run_program("def main(): return 7", "main").result == 7
