"""``peeros proc``, ``deadlock`` and ``alloc`` as a user types them."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Nodes
from tests.e2e.test_cli import peeros

# Silberschatz, Galvin, Gagne, OSC 10e §8.6.3.3: the 5-process, 3-resource example.
TEXTBOOK = {
    "resources": ["A", "B", "C"],
    "available": [3, 3, 2],
    "max": {"P0": [7, 5, 3], "P1": [3, 2, 2], "P2": [9, 0, 2], "P3": [2, 2, 2], "P4": [4, 3, 3]},
    "allocation": {
        "P0": [0, 1, 0],
        "P1": [2, 0, 0],
        "P2": [3, 0, 2],
        "P3": [2, 1, 1],
        "P4": [0, 0, 2],
    },
}


def test_bankers_on_the_textbook_state(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps(TEXTBOOK))
    r = peeros("deadlock", "bankers", str(state), "--json")
    report = json.loads(r.stdout)
    assert r.returncode == 0 and report["safe"] is True and report["granted"] is None
    assert sorted(report["sequence"]) == ["P0", "P1", "P2", "P3", "P4"]
    r = peeros("deadlock", "bankers", str(state), "--request", "P1:1,0,2", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["granted"] is True
    r = peeros("deadlock", "bankers", str(state), "--request", "P0:7,5,3")
    assert r.returncode == 1  # not granted
    state.write_text(json.dumps({**TEXTBOOK, "available": [3, 3]}))
    r = peeros("deadlock", "bankers", str(state))
    assert r.returncode == 1 and "available" in r.stderr and "Traceback" not in r.stderr


def test_deadlock_check_on_graphs(tmp_path: Path) -> None:
    g = tmp_path / "g.json"
    g.write_text(json.dumps({"edges": [["P1", "P2"], ["P2", "P3"], ["P3", "P1"], ["P4", "P1"]]}))
    report = json.loads(peeros("deadlock", "check", "--graph", str(g), "--json").stdout)
    assert report["deadlocked"] == ["P1", "P2", "P3"] and report["cycles"] == [["P1", "P2", "P3"]]
    g.write_text(json.dumps({"edges": [["P1", "P2"], ["P2", "P3"]]}))
    assert peeros("deadlock", "check", "--graph", str(g)).stdout == "no deadlock\n"
    g.write_text(json.dumps({"edges": [["P1"]]}))
    r = peeros("deadlock", "check", "--graph", str(g))
    assert r.returncode == 1 and "Traceback" not in r.stderr


def test_alloc_simulate_the_textbook_exercise() -> None:
    # OSC 10e §9.2.2 exercise: holes 100, 500, 200, 300, 600; requests 212, 417, 112, 426.
    def run(policy: str) -> list[int | None]:
        r = peeros(
            "alloc",
            "simulate",
            "--policy",
            policy,
            "--holes",
            "100,500,200,300,600",
            "--requests",
            "212,417,112,426",
            "--json",
        )
        return [p and p["hole_index"] for p in json.loads(r.stdout)["placements"]]

    assert run("first") == [1, 4, 1, None]
    assert run("best") == [3, 1, 2, 4]
    assert run("worst") == [4, 1, 4, None]
    r = peeros("alloc", "simulate", "--policy", "lucky", "--holes", "1", "--requests", "1")
    assert r.returncode == 1 and "policy" in r.stderr


def test_proc_and_alloc_on_a_live_peer(nodes: Nodes) -> None:
    cluster = nodes.cluster(1)
    d = str(cluster.data_dir)
    root = peeros("proc", "create", "shell", "--data-dir", d).stdout.strip()
    child = peeros("proc", "create", "vim", "--parent", root[:6], "--data-dir", d).stdout.strip()
    tree = json.loads(peeros("proc", "tree", "--json", "--data-dir", d).stdout)["tree"]
    assert tree[0]["pid"] == root and tree[0]["children"][0]["pid"] == child
    human = peeros("proc", "tree", "--data-dir", d).stdout
    assert "shell" in human and "  " + child[:12] in human
    assert peeros("proc", "kill", root, "--data-dir", d).stdout == "killed 2 process(es)\n"
    assert json.loads(peeros("proc", "tree", "--json", "--data-dir", d).stdout)["processes"] == []
    r = peeros("proc", "kill", "nope", "--data-dir", d)
    assert r.returncode == 1 and "no process nope" in r.stderr

    assert peeros("alloc", "alloc", "100", "--name", "a", "--data-dir", d).returncode == 0
    assert peeros("alloc", "policy", "best", "--data-dir", d).stdout == "policy best\n"
    view = json.loads(peeros("alloc", "show", "--json", "--data-dir", d).stdout)
    assert view["policy"] == "best" and view["segments"][0]["name"] == "a"
    assert peeros("alloc", "free", "a", "--data-dir", d).returncode == 0
    r = peeros("alloc", "free", "a", "--data-dir", d)
    assert r.returncode == 1 and "a" in r.stderr
    r = peeros("alloc", "alloc", "-5", "--name", "neg", "--data-dir", d)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert (
        json.loads(peeros("deadlock", "check", "--json", "--data-dir", d).stdout)["deadlocked"]
        == []
    )
