"""The CPU-sharing commands as a user types them."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Nodes
from tests.e2e.test_cli import peeros


def test_cpu_prints_25(nodes: Nodes) -> None:
    cluster = nodes.cluster(2)
    d = str(cluster.data_dir)
    r = peeros(
        "cpu",
        "--program",
        "def main(x): return x * x",
        "--function",
        "main",
        "--args",
        "[5]",
        "--data-dir",
        d,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == "25\n"
    r = peeros(
        "cpu",
        "--program",
        "def main(x): return x * x",
        "--function",
        "main",
        "--args",
        "[5]",
        "--json",
        "--data-dir",
        d,
    )
    out = json.loads(r.stdout)
    r = peeros(
        "cpu",
        "--program",
        "def main(): return 7",
        "--function",
        "main",
        "--elsewhere",
        "--json",
        "--data-dir",
        d,
    )
    away = json.loads(r.stdout)
    assert (away["status"], away["result"]) == ("DONE", 7)
    assert away["peer_id"] not in (None, cluster.peers[0].info["peer_id"])
    assert {
        "task_id",
        "status",
        "result",
        "error",
        "execution_time",
        "waiting_time",
        "turnaround_time",
        "peer_id",
        "attempts",
    } <= set(out)
    assert out["status"] == "DONE" and out["result"] == 25


def test_cpu_from_a_file_with_options(nodes: Nodes, tmp_path: Path) -> None:
    cluster = nodes.cluster(1)
    prog = tmp_path / "prog.py"
    prog.write_text("def main(a, b):\n    return {'sum': a + b}\n")
    r = peeros(
        "cpu",
        "--file",
        str(prog),
        "--function",
        "main",
        "--args",
        "[2, 3]",
        "--confidential",
        "--priority",
        "5",
        "--retries",
        "1",
        "--timeout",
        "10",
        "--cache",
        "--memory-mb",
        "512",
        "--data-dir",
        str(cluster.data_dir),
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"sum": 5}


def test_a_failing_task_prints_the_remote_traceback_and_exits_1(nodes: Nodes) -> None:
    cluster = nodes.cluster(1)
    r = peeros(
        "cpu",
        "--program",
        "def main():\n    return 1 / 0\n",
        "--function",
        "main",
        "--data-dir",
        str(cluster.data_dir),
    )
    assert r.returncode == 1
    assert "FAILED: ZeroDivisionError: division by zero" in r.stderr
    assert "Traceback (most recent call last)" in r.stderr  # the remote one


def test_batch_history_and_sched(nodes: Nodes, tmp_path: Path) -> None:
    cluster = nodes.cluster(2)
    d = str(cluster.data_dir)
    tasks = [
        {"program": "def main(x): return x + 1", "function": "main", "args": [i]} for i in range(5)
    ]
    (tmp_path / "tasks.json").write_text(json.dumps(tasks))
    r = peeros("batch", str(tmp_path / "tasks.json"), "--json", "--data-dir", d)
    assert r.returncode == 0, r.stderr
    assert [x["result"] for x in json.loads(r.stdout)] == [1, 2, 3, 4, 5]

    r = peeros("history", "--limit", "3", "--json", "--data-dir", d)
    hist = json.loads(r.stdout)
    assert len(hist["tasks"]) == 3 and hist["stats"]["count"] >= 5
    assert {
        "success_rate",
        "mean_execution_time",
        "mean_waiting_time",
        "mean_turnaround_time",
        "throughput",
    } <= set(hist["stats"])
    assert peeros("history", "--data-dir", d).returncode == 0

    r = peeros("sched", "set", "rr", "--quantum", "20", "--data-dir", d)
    assert r.returncode == 0 and "policy rr" in r.stdout
    show = json.loads(peeros("sched", "show", "--json", "--data-dir", d).stdout)
    assert show["policy"] == "rr" and show["quantum_ms"] == 20
    assert {"queue", "running", "avg_waiting", "avg_turnaround", "throughput", "gantt"} <= set(show)
    r = peeros("sched", "set", "lottery", "--data-dir", d)
    assert r.returncode == 1 and "unknown policy 'lottery'" in r.stderr


def test_sched_simulate_textbook_fcfs(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.json"
    jobs.write_text(
        json.dumps(
            {
                "policy": "rr",
                "quantum": 4,
                "jobs": [
                    {"name": "P1", "arrival": 0, "burst": 24},
                    {"name": "P2", "arrival": 0, "burst": 3},
                    {"name": "P3", "arrival": 0, "burst": 3},
                ],
            }
        )
    )
    r = peeros("sched", "simulate", str(jobs), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["avg_waiting"] == round(17 / 3, 4)
    assert peeros("sched", "simulate", str(jobs)).returncode == 0
    jobs.write_text("{broken")
    r = peeros("sched", "simulate", str(jobs))
    assert r.returncode == 1 and "not valid JSON" in r.stderr


def test_bad_cpu_commands(nodes: Nodes, tmp_path: Path) -> None:
    cluster = nodes.cluster(1)
    d = str(cluster.data_dir)
    cases = [
        (["--program", "def main(:", "--function", "main"], "invalid program source"),
        (
            ["--program", "def main(): pass", "--function", "other"],
            "function 'other' is not defined",
        ),
        (
            ["--program", "def main(x): pass", "--function", "main", "--args", "[1,"],
            "not valid JSON",
        ),
        (
            ["--program", "def main(x): pass", "--function", "main", "--timeout", "-1"],
            "must be > 0",
        ),
        (["--function", "main"], "exactly one of --program and --file"),
        (
            [
                "--program",
                "def main(): pass",
                "--function",
                "main",
                "--confidential",
                "--elsewhere",
            ],
            "both confidential",
        ),
        (
            ["--program", "def main(): pass", "--function", "main", "--elsewhere"],
            "no other peer can run it",
        ),
    ]
    for args, message in cases:
        r = peeros("cpu", *args, "--data-dir", d)
        assert r.returncode != 0, args
        assert message in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr
    r = peeros("cancel", "0" * 32, "--data-dir", d)
    assert r.returncode == 1 and "no task" in r.stderr
    r = peeros("cancel", "xyz", "--data-dir", d)
    assert r.returncode == 1 and "32 hex digits" in r.stderr
    (tmp_path / "bad.json").write_text(
        json.dumps([{"program": "x = 1", "function": "x", "bogus": 1}])
    )
    r = peeros("batch", str(tmp_path / "bad.json"), "--data-dir", d)
    assert r.returncode == 1 and "task 0" in r.stderr and "bogus" in r.stderr
