"""The process table (Silberschatz OSC 10e §3.1.2 Fig. 3.2, §3.3.2 zombies and
cascading termination)."""

from __future__ import annotations

import pytest

from peeros.errors import Conflict, NotFound
from peeros.kernel.processes import InvalidTransition, ProcessTable, descendants, kill_set, tree


def test_the_textbook_life_cycle() -> None:
    t = ProcessTable("peer")
    t.create("p1", "init", now=0)
    for state in ("READY", "RUNNING", "WAITING", "READY", "RUNNING", "READY", "RUNNING"):
        t.move("p1", state)  # type: ignore[arg-type]
    assert t.exit("p1", "DONE").state == "ZOMBIE"
    assert t.collect("p1").exit_status == "DONE"
    assert "p1" not in t


@pytest.mark.parametrize(
    ("path", "bad"), [((), "RUNNING"), (("READY",), "WAITING"), (("READY", "RUNNING"), "NEW")]
)
def test_illegal_transitions_are_refused_and_change_nothing(
    path: tuple[str, ...], bad: str
) -> None:
    t = ProcessTable("peer")
    t.create("p", "x", now=0)
    for s in path:
        t.move("p", s)  # type: ignore[arg-type]
    before = t.get("p")
    with pytest.raises(InvalidTransition):
        t.move("p", bad)  # type: ignore[arg-type]
    assert t.get("p") == before


def test_only_zombies_are_collected_and_pids_are_unique() -> None:
    t = ProcessTable("peer")
    t.create("p", "x", now=0)
    with pytest.raises(InvalidTransition, match="not a zombie"):
        t.collect("p")
    with pytest.raises(Conflict):
        t.create("p", "again", now=1)
    with pytest.raises(NotFound):
        t.move("ghost", "READY")


def test_groups_are_inherited_from_the_parent() -> None:
    t = ProcessTable("peer")
    t.create("root", "shell", now=0)
    t.create("a", "child", now=1, parent="root")
    t.create("b", "grandchild", now=2, parent="a")
    t.create("c", "remote child", now=3, parent="elsewhere", parent_group="g9")
    assert [t.get(p).group for p in ("root", "a", "b", "c")] == ["root", "root", "root", "g9"]


def snapshot(*rows: tuple[str, str | None, str, str]) -> list[dict[str, object]]:
    return [
        {"pid": p, "parent": par, "group": g, "state": s, "created": i, "peer": "x", "name": p}
        for i, (p, par, g, s) in enumerate(rows)
    ]


def test_cascading_termination_reaches_every_live_descendant_across_peers() -> None:
    procs = snapshot(
        ("r", None, "r", "WAITING"),
        ("a", "r", "r", "RUNNING"),
        ("b", "r", "r", "READY"),
        ("a1", "a", "r", "RUNNING"),
        ("done", "a", "r", "ZOMBIE"),
        ("other", None, "o", "RUNNING"),
    )
    assert descendants(procs, "r") == ["a", "b", "a1", "done"]
    assert kill_set(procs, "a") == ["a", "a1"]
    assert sorted(kill_set(procs, "a1", group=True)) == ["a", "a1", "b", "r"]
    with pytest.raises(NotFound):
        kill_set(procs, "nope")


def test_tree_nests_children_under_parents() -> None:
    procs = snapshot(
        ("r", None, "r", "RUNNING"), ("a", "r", "r", "RUNNING"), ("orphan", "gone", "g", "READY")
    )
    roots = tree(procs)
    assert [n["pid"] for n in roots] == ["r", "orphan"]
    assert [c["pid"] for c in roots[0]["children"]] == ["a"]
