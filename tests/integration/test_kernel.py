"""The kernel live: Banker's admission, memory reservations, process trees across peers."""

from __future__ import annotations

import pytest

import peeros
from peeros import Client
from peeros.errors import BadRequest, Conflict, NotFound
from tests.conftest import FAST_PEER, Nodes, wait_until

SLEEP = "def main(s):\n    import time\n    time.sleep(s)\n    return s\n"
PARENT = """
from peeros import task

def main(child, on_a, on_b, seconds):
    kids = [task.spawn_program(child, "main", [seconds], on=on_a),
            task.spawn_program(child, "main", [seconds], on=on_b)]
    return [task.wait(k) for k in kids]
"""
LAZY_PARENT = """
from peeros import task

def main(child, pause):
    import time
    kid = task.spawn_program(child, "main", [0])
    time.sleep(pause)
    return {"kid": kid, "value": task.wait(kid)}
"""


def mk(**fields: object) -> peeros.protocol.TaskRequest:
    return peeros.protocol.TaskRequest(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("safe", [False, True])
def test_bankers_holds_back_an_unsafe_grant_until_resources_return(
    nodes: Nodes, safe: bool
) -> None:
    extra = [*FAST_PEER, "--slots", "2", "--resource", "r=3"]
    cluster = nodes.cluster(1, peer_extra=extra)
    with Client(data_dir=cluster.peers[0].data_dir) as c:
        (a,) = c.submit_requests(
            [
                mk(
                    program=SLEEP,
                    function="main",
                    args=[2],
                    confidential=True,
                    claims={"r": 3},
                    holds={"r": 1},
                )
            ]
        )
        wait_until(lambda: c.sched().running)
        # A holds 1 of 3 and may need 2 more. B asking for 1 leaves 1 free: if B may also
        # need 2 more, neither could finish (unsafe); if B needs nothing more, it is safe.
        claims = {"r": 1} if safe else {"r": 3}
        (b,) = c.submit_requests(
            [
                mk(
                    program=SLEEP,
                    function="main",
                    args=[0.1],
                    confidential=True,
                    claims=claims,
                    holds={"r": 1},
                )
            ]
        )
        if safe:
            c.results([b])
            assert c.task(a).status == "RUNNING"  # B ran alongside A
        else:
            held = wait_until(
                lambda: [q for q in c.sched().queue if q["task_id"] == b and q["held"]]
            )
            assert "unsafe" in held[0]["held"]
            ra, rb = c.results([a, b])
            gantt = {t: (s, e) for t, s, e, _slot in c.sched().gantt}
            assert gantt[b][0] >= gantt[a][1] - 0.05  # B started only once A gave r back
            assert (ra.status, rb.status) == ("DONE", "DONE")
        c.results([a, b])
        state = c.kernel.state()["bankers"]
        assert state["resources"] == ["cpu", "memory_mb", "r"]
        assert state["available"] == [2, 4096, 3] and state["max"] == {}  # all given back


def test_a_task_past_its_memory_reservation_gets_memory_error(nodes: Nodes) -> None:
    cluster = nodes.cluster(1)
    with Client(data_dir=cluster.peers[0].data_dir) as c:
        r = c.run_program(
            "def main():\n    return len(bytearray(200 << 20))\n",
            "main",
            memory_mb=64,
            confidential=True,
        )
        assert r.status == "FAILED" and "MemoryError" in (r.error or "")
        ok = c.run_program(
            "def main():\n    return len(bytearray(20 << 20))\n",
            "main",
            memory_mb=64,
            confidential=True,
        )
        assert ok.result == 20 << 20


def test_a_reservation_waits_until_frees_coalesce_a_big_enough_hole(nodes: Nodes) -> None:
    cluster = nodes.cluster(1, peer_extra=[*FAST_PEER, "--memory-pool-mb", "300"])
    with Client(data_dir=cluster.peers[0].data_dir) as c:
        for name in ("x", "y", "z"):
            c.kernel.alloc("alloc", name=name, size=100)
        (t,) = c.submit_requests(
            [mk(program=SLEEP, function="main", args=[0], memory_mb=150, confidential=True)]
        )
        wait_until(lambda: any("memory" in (q["held"] or "") for q in c.sched().queue))
        view = c.kernel.alloc("free", name="x")
        assert view["stats"]["largest_free"] == 100
        assert any(q["held"] for q in c.sched().queue)  # a 100 MB hole is not enough
        view = c.kernel.alloc("free", name="y")  # x and y coalesce into 200 MB
        (r,) = c.results([t])
        assert r.status == "DONE"
        segments = c.kernel.alloc("show")["segments"]
        assert [s["kind"] for s in segments] == ["hole", "block"]  # the task freed its 150 MB


def test_killing_a_parent_kills_its_children_on_two_other_peers(nodes: Nodes) -> None:
    cluster = nodes.cluster(3)
    p0, p1, p2 = cluster.peers
    with Client(data_dir=p0.data_dir) as c:
        (parent,) = c.submit_requests(
            [
                mk(
                    program=PARENT,
                    function="main",
                    confidential=True,
                    args=[SLEEP, p1.info["peer_id"], p2.info["peer_id"], 120],
                )
            ]
        )

        def family() -> list[dict[str, object]]:
            procs = c.kernel.processes()["processes"]
            kids = [p for p in procs if p["parent"] == parent and p["state"] == "RUNNING"]
            return kids if len(kids) == 2 else []

        kids = wait_until(family, timeout=30)
        assert {k["peer"] for k in kids} == {p1.info["peer_id"], p2.info["peer_id"]}
        me = next(p for p in c.kernel.processes()["processes"] if p["pid"] == parent)
        assert me["state"] == "WAITING" and str(me["waiting_on"]).startswith("child:")
        assert {k["group"] for k in kids} == {me["group"]}
        killed = c.kernel.kill(parent)["killed"]
        assert sorted(killed) == sorted([parent, *(k["pid"] for k in kids)])
        wait_until(lambda: c.kernel.processes()["processes"] == [], timeout=15)
        assert c.results([parent])[0].status == "CANCELLED"


def test_a_finished_child_is_a_zombie_until_its_parent_collects_it(nodes: Nodes) -> None:
    cluster = nodes.cluster(1)
    with Client(data_dir=cluster.peers[0].data_dir) as c:
        (parent,) = c.submit_requests(
            [mk(program=LAZY_PARENT, function="main", args=[SLEEP, 2.0], confidential=True)]
        )
        zombie = wait_until(
            lambda: [
                p
                for p in c.kernel.processes()["processes"]
                if p["parent"] == parent and p["state"] == "ZOMBIE"
            ]
        )
        assert zombie[0]["exit_status"] == "DONE"
        (r,) = c.results([parent])
        assert r.status == "DONE" and r.result["value"] == 0
        assert c.kernel.processes()["processes"] == []  # collected, then the parent too


def test_plain_processes_trees_and_bad_input(nodes: Nodes) -> None:
    cluster = nodes.cluster(1)
    with Client(data_dir=cluster.peers[0].data_dir) as c:
        root = c.kernel.create("shell")
        child = c.kernel.create("editor", parent=root["pid"])
        assert child["group"] == root["group"] == root["pid"]
        view = c.kernel.processes()
        assert [n["pid"] for n in view["tree"]] == [root["pid"]]
        assert view["tree"][0]["children"][0]["pid"] == child["pid"]
        before = c.kernel.alloc("show")
        with pytest.raises(BadRequest, match="size"):
            c.kernel.alloc("alloc", name="n", size=-5)
        with pytest.raises(BadRequest, match="policy"):
            c.kernel.alloc("policy", policy="random-fit")
        c.kernel.alloc("alloc", name="once", size=10)
        c.kernel.alloc("free", name="once")
        with pytest.raises(NotFound):
            c.kernel.alloc("free", name="once")
        c.kernel.alloc("alloc", name="dup", size=10)
        with pytest.raises(Conflict):
            c.kernel.alloc("alloc", name="dup", size=10)
        c.kernel.alloc("free", name="dup")
        assert c.kernel.alloc("show") == before
        with pytest.raises(NotFound):
            c.kernel.kill("nope")
        assert sorted(c.kernel.kill(root["pid"])["killed"]) == sorted([root["pid"], child["pid"]])
        assert c.kernel.processes()["processes"] == []
