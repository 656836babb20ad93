"""The memory commands as a user types them."""

from __future__ import annotations

import json

from tests.conftest import Nodes, wait_until
from tests.e2e.test_cli import peeros


def test_set_get_del_keys_locally_and_on_another_peer(nodes: Nodes) -> None:
    cluster = nodes.cluster(2)
    a, b = cluster.peers
    da, db = str(a.data_dir), str(b.data_dir)
    assert peeros("set-mem", "--key", "n", "--value", "42", "--data-dir", da).returncode == 0
    r = peeros("get-mem", "--key", "n", "--json", "--data-dir", da)
    got = json.loads(r.stdout)
    assert got["key"] == "n" and got["value"] == 42  # valid JSON is parsed
    peeros("set-mem", "--key", "s", "--value", "hello world", "--data-dir", da)
    assert peeros("get-mem", "--key", "s", "--data-dir", da).stdout == "hello world\n"
    r = peeros("keys", "--pattern", "*", "--json", "--data-dir", da)
    assert json.loads(r.stdout) == ["n", "s"]

    # --on by peer id and by cluster address
    wait_until(lambda: peeros("peers", "--json", "--data-dir", da).stdout.count("peer_id") == 2)
    r = peeros(
        "set-mem",
        "--key",
        "remote",
        "--value",
        '{"x": [1]}',
        "--on",
        b.info["peer_id"],
        "--data-dir",
        da,
    )
    assert r.returncode == 0, r.stderr
    r = peeros("get-mem", "--key", "remote", "--on", b.info["address"], "--json", "--data-dir", da)
    assert json.loads(r.stdout)["value"] == {"x": [1]}
    assert json.loads(peeros("keys", "--json", "--data-dir", db).stdout) == ["remote"]
    assert (
        peeros("del-mem", "--key", "remote", "--on", b.info["peer_id"], "--data-dir", da).returncode
        == 0
    )
    assert json.loads(peeros("keys", "--json", "--data-dir", db).stdout) == []

    r = peeros("set-mem", "--key", "t", "--value", "1", "--ttl", "60", "--json", "--data-dir", da)
    assert json.loads(r.stdout)["ttl"] == 60


def test_missing_keys_and_bad_input_exit_non_zero(nodes: Nodes) -> None:
    cluster = nodes.cluster(1)
    d = str(cluster.data_dir)
    for args in (["get-mem", "--key", "nope"], ["del-mem", "--key", "nope"]):
        r = peeros(*args, "--data-dir", d)
        assert r.returncode == 1 and "not found" in r.stderr and "Traceback" not in r.stderr
    r = peeros("set-mem", "--key", "k", "--value", "v", "--ttl", "-1", "--data-dir", d)
    assert r.returncode == 2
    r = peeros("get-mem", "--key", "k", "--on", "not a peer", "--data-dir", d)
    assert r.returncode == 1 and "peer id or HOST:PORT" in r.stderr
    r = peeros("get-mem", "--key", "k", "--on", "a" * 26, "--data-dir", d)
    assert r.returncode == 1 and "no peer" in r.stderr
    r = peeros("set-mem", "--key", "", "--value", "v", "--data-dir", d)
    assert r.returncode == 1 and "key" in r.stderr
