"""The ``peeros ipc`` commands as a user types them (one 2-peer cluster for the module)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from peeros import Client
from peeros.launcher import LocalCluster
from tests.conftest import Nodes, wait_until
from tests.e2e.test_cli import peeros


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    nodes = Nodes(Path(tmp_path_factory.mktemp("cli-ipc")))
    try:
        yield nodes.cluster(2)
    finally:
        nodes.stop_all()


def test_queues_and_semaphores_from_the_command_line(cluster: LocalCluster) -> None:
    a, b = cluster.peers
    da, db = str(a.data_dir), str(b.data_dir)
    on_b = ["--on", b.info["address"], "--data-dir", da]

    r = peeros("ipc", "queue-create", "jobs", "--capacity", "2", *on_b)
    assert r.returncode == 0 and f"capacity 2) on {b.info['peer_id']}" in r.stdout, r.stderr
    assert peeros("ipc", "send", "jobs", '{"n": [1]}', *on_b).stdout == "queued on jobs\n"
    assert peeros("ipc", "send", "jobs", "plain words", *on_b).returncode == 0
    assert peeros("ipc", "recv", "jobs", "--data-dir", db).stdout == '{"n": [1]}\n'  # JSON
    r = peeros("ipc", "recv", "jobs", "--json", *on_b)
    assert json.loads(r.stdout)["message"] == "plain words"  # not JSON: a string

    assert peeros("ipc", "sem-create", "lock", "--binary", "--data-dir", da).returncode == 0
    assert peeros("ipc", "sem-wait", "lock", "--data-dir", da).stdout.startswith("acquired lock")
    # a second waiter blocks until someone signals
    blocked = subprocess.Popen(
        [sys.executable, "-m", "peeros", "ipc", "sem-wait", "lock", "--data-dir", da],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with Client(data_dir=da) as client:
            wait_until(lambda: client.ipc.sem_list()[0].waiters)
        r = peeros("ipc", "sem-signal", "lock", "--data-dir", da)
        assert r.returncode == 0 and "woke client:" in r.stdout
        out, err = blocked.communicate(timeout=30)
        assert blocked.returncode == 0 and out.startswith("acquired lock"), err
    finally:
        blocked.kill()
        blocked.wait()
    r = peeros("ipc", "list", "--data-dir", da)
    assert r.stdout.startswith("semaphore lock  binary  value 0  holders client:")

    r = peeros("ipc", "send", "*", "hello all", "--data-dir", db)
    assert r.stdout == "broadcast to 1 queue(s): jobs\n"


def test_ipc_errors_are_one_line_with_non_zero_exit(cluster: LocalCluster) -> None:
    d = ["--data-dir", str(cluster.peers[1].data_dir)]
    with Client(data_dir=d[1]) as client:
        client.ipc.queue_create("q")
        client.ipc.sem_create("m", value=1, binary=True)
        before = client.ipc.list()
        cases = [
            (["recv", "q", "--timeout", "0.2"], "timed out after 0.2s waiting for queue 'q'"),
            (["sem-wait", "ghost"], "no semaphore 'ghost'"),
            (["queue-create", "q"], "a queue named 'q' already exists"),
            (["sem-signal", "m"], "binary semaphore 'm' is already free"),
            (["list", "--on", "nowhere"], "peer id or HOST:PORT"),
            (["queue-create", "z", "--capacity", "0"], "0 is not in the range x>=1"),
        ]
        with ThreadPoolExecutor(len(cases)) as pool:  # independent: run them side by side
            runs = list(pool.map(lambda c: peeros("ipc", *c[0], *d), cases))
        for (args, text), r in zip(cases, runs, strict=True):
            assert r.returncode == (2 if "--capacity" in args else 1), (args, r.stderr)
            assert text in r.stderr and "Traceback" not in r.stderr, r.stderr
            if r.returncode == 1:
                assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
        assert client.ipc.list() == before
