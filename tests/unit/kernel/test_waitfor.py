"""Deadlock detection, specified by Silberschatz et al., OSC 10e §8.7.1 and §8.7.2."""

from __future__ import annotations

import copy
from itertools import pairwise, permutations
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peeros.kernel.waitfor import (
    DeadlockInputError,
    WaitForGraph,
    check,
    deadlocked,
    detect_matrix,
    find_cycles,
)

# In the style of OSC 10e Fig. 8.11(b): two cycles sharing P1 -> P2, plus P5, which waits
# on a deadlocked process without being on a cycle itself.
FIG_8_11 = [
    ("P5", "P1"),
    ("P1", "P2"),
    ("P2", "P3"),
    ("P2", "P4"),
    ("P3", "P4"),
    ("P4", "P1"),
]

# OSC 10e §8.7.2: A has 7 instances, B 2, C 6; nothing is available.
DETECTION: dict[str, Any] = {
    "available": [0, 0, 0],
    "allocation": {
        "P0": [0, 1, 0],
        "P1": [2, 0, 0],
        "P2": [3, 0, 3],
        "P3": [2, 1, 1],
        "P4": [0, 0, 2],
    },
    "request": {
        "P0": [0, 0, 0],
        "P1": [2, 0, 2],
        "P2": [0, 0, 0],
        "P3": [1, 0, 0],
        "P4": [0, 0, 2],
    },
}


class TestWaitForGraph:
    def test_fig_8_11_style_graph_has_two_cycles(self) -> None:
        assert find_cycles(FIG_8_11) == [["P1", "P2", "P3", "P4"], ["P1", "P2", "P4"]]
        assert deadlocked(FIG_8_11) == ["P1", "P2", "P3", "P4"]  # not P5

    def test_an_acyclic_graph_has_no_deadlock(self) -> None:
        chain = [("P1", "P2"), ("P2", "P3"), ("P1", "P3")]
        assert find_cycles(chain) == []
        assert deadlocked(chain) == []
        assert find_cycles([]) == []

    def test_a_self_loop_is_a_cycle(self) -> None:
        assert find_cycles([("P1", "P1")]) == [["P1"]]
        assert deadlocked([("P1", "P1"), ("P2", "P1")]) == ["P1"]

    def test_two_disjoint_cycles_are_each_found_once_in_canonical_rotation(self) -> None:
        edges = [("d", "e"), ("e", "c"), ("c", "d"), ("b", "a"), ("a", "b"), ("a", "b")]
        assert find_cycles(edges) == [["a", "b"], ["c", "d", "e"]]
        assert deadlocked(edges) == ["a", "b", "c", "d", "e"]

    def test_every_cycle_of_a_complete_graph(self) -> None:
        nodes = "abcd"
        edges = [(x, y) for x in nodes for y in nodes if x != y]
        # C(4,2)*1! + C(4,3)*2! + C(4,4)*3! = 6 + 8 + 6
        assert len(find_cycles(edges)) == 20

    def test_live_graph_add_remove_and_export(self) -> None:
        g = WaitForGraph()
        g.add_wait("T1", "T2", "lock:a")
        g.add_wait("T2", "T1", "sem:b")
        g.add_wait("T3", "T1")
        assert g.cycles() == [["T1", "T2"]]
        assert g.to_dict() == {
            "nodes": ["T1", "T2", "T3"],
            "edges": [["T1", "T2"], ["T2", "T1"], ["T3", "T1"]],
            "labels": [["lock:a"], ["sem:b"], []],
        }
        assert check(g.to_dict()) == {"deadlocked": ["T1", "T2"], "cycles": [["T1", "T2"]]}
        g.remove_waits("T2", "sem:b")  # T2 got its semaphore
        assert g.cycles() == []
        g.add_wait("T2", "T1", "sem:b")
        g.remove_node("T1")  # T1 was killed
        assert g.edges() == []
        g.remove_node("T1")  # idempotent

    def test_an_edge_stays_while_any_reason_remains(self) -> None:
        g = WaitForGraph()
        g.add_wait("T1", "T2", "r1")
        g.add_wait("T1", "T2", "r2")
        g.remove_waits("T1", "r1")
        assert g.to_dict()["labels"] == [["r2"]]
        g.remove_waits("T1")
        assert g.edges() == []


class TestMatrixDetection:
    def test_textbook_state_is_not_deadlocked(self) -> None:
        assert detect_matrix(DETECTION) == []
        # The sweep visits P0..P4 pass after pass, so P4 finishes in the first pass and
        # P1 in the second; the textbook's <P0, P2, P3, P1, P4> is another valid order.
        report = check(DETECTION)
        assert report["deadlocked"] == []
        assert report["finish_order"] == ["P0", "P2", "P3", "P4", "P1"]
        assert "cycles" not in report

    def test_p2_asking_one_more_c_deadlocks_p1_to_p4(self) -> None:
        data = copy.deepcopy(DETECTION)
        data["request"]["P2"] = [0, 0, 1]
        assert detect_matrix(data) == ["P1", "P2", "P3", "P4"]

    def test_a_process_holding_nothing_is_never_deadlocked(self) -> None:
        data = {"available": [0], "allocation": {"P": [0]}, "request": {"P": [5]}}
        assert detect_matrix(data) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"edges": [["P1", "P2", "P3"]]}, r"edges\[0\] must be a \[waiter, holder\] pair"),
        ({"edges": ["P1P2"]}, r"edges\[0\] must be a \[waiter, holder\] pair"),
        ({"edges": [["P1", 2]]}, r"edges\[0\]\[1\] must be a non-empty string"),
        ({"edges": "P1->P2"}, "edges must be a list"),
        ({"edges": [], "colour": 1}, "unknown field"),
        (
            {"available": [1, 1], "allocation": {"P": [1]}, "request": {"P": [0, 0]}},
            r"allocation\[P\] has 1 entries, expected 2",
        ),
        (
            {"available": [1], "allocation": {"P": [-1]}, "request": {"P": [0]}},
            r"allocation\[P\]\[0\] must be a non-negative integer",
        ),
        ({"available": [-1], "allocation": {}, "request": {}}, r"available\[0\] must be"),
        (
            {"available": [1], "allocation": {"P": [0]}, "request": {"Q": [0]}},
            "different processes",
        ),
        ({"available": [1], "allocation": {}}, "missing field 'request'"),
        ({"nodes": ["P1"]}, "expected either"),
    ],
)
def test_bad_input_names_the_problem(data: dict[str, Any], message: str) -> None:
    with pytest.raises(DeadlockInputError, match=message):
        check(data)


def test_deadlock_input_error_is_a_value_error() -> None:
    assert issubclass(DeadlockInputError, ValueError)


def brute_force_cycles(edges: list[tuple[str, str]]) -> list[list[str]]:
    """Try every ordering of every subset: slow, obviously right, for small graphs."""
    nodes = sorted({n for e in edges for n in e})
    edge_set = set(edges)
    found = []
    for k in range(1, len(nodes) + 1):
        for perm in permutations(nodes, k):
            if perm[0] != min(perm):
                continue
            ring = [*perm, perm[0]]
            if all((a, b) in edge_set for a, b in pairwise(ring)):
                found.append(list(perm))
    return sorted(found)


@given(st.lists(st.tuples(st.sampled_from("abcde"), st.sampled_from("abcde")), max_size=12))
def test_cycles_match_brute_force(edges: list[tuple[str, str]]) -> None:
    cycles = find_cycles(edges)
    assert cycles == brute_force_cycles(edges)
    assert deadlocked(edges) == sorted({n for c in cycles for n in c})
