"""Banker's algorithm, specified by the worked example of Silberschatz et al., OSC 10e §8.6.3.3."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peeros.kernel.bankers import (
    Banker,
    BankersError,
    BankersState,
    is_safe,
    request,
    to_report,
)

# OSC 10e §8.6.3.3: five processes, resources A (10 instances), B (5), C (7).
CLASSIC: dict[str, Any] = {
    "resources": ["A", "B", "C"],
    "available": [3, 3, 2],
    "max": {
        "P0": [7, 5, 3],
        "P1": [3, 2, 2],
        "P2": [9, 0, 2],
        "P3": [2, 2, 2],
        "P4": [4, 3, 3],
    },
    "allocation": {
        "P0": [0, 1, 0],
        "P1": [2, 0, 0],
        "P2": [3, 0, 2],
        "P3": [2, 1, 1],
        "P4": [0, 0, 2],
    },
}


def classic() -> BankersState:
    return BankersState.from_dict(CLASSIC)


def executable(state: BankersState, sequence: tuple[str, ...]) -> bool:
    """Replay ``sequence``: each process must be able to get its whole need, then release."""
    work = list(state.available)
    for p in sequence:
        if any(n > w for n, w in zip(state.need(p), work, strict=True)):
            return False
        work = [w + a for w, a in zip(work, state.allocation[p], strict=True)]
    return True


class TestSafety:
    def test_the_classic_state_is_safe(self) -> None:
        safe, sequence = is_safe(classic())
        assert safe
        # The sweep visits P0..P4 in order, pass after pass; the textbook's own answer
        # <P1, P3, P4, P2, P0> is another valid order.
        assert sequence == ("P1", "P3", "P4", "P0", "P2")
        assert executable(classic(), sequence)

    def test_need_is_max_minus_allocation(self) -> None:
        state = classic()
        assert [state.need(p) for p in state.processes] == [
            (7, 4, 3),
            (1, 2, 2),
            (6, 0, 0),
            (0, 1, 1),
            (4, 3, 1),
        ]

    def test_an_unsafe_state_reports_who_can_still_finish(self) -> None:
        data = copy.deepcopy(CLASSIC)
        data["available"] = [0, 0, 0]
        safe, sequence = is_safe(BankersState.from_dict(data))
        assert not safe
        assert sequence == ()  # P3 needs (0,1,1) and nothing is available


class TestRequest:
    def test_p1_request_1_0_2_is_granted(self) -> None:
        result = request(classic(), "P1", [1, 0, 2])
        assert result.granted and result.safe and not result.wait
        assert result.new_state is not None
        assert result.new_state.available == (2, 3, 0)
        assert result.new_state.allocation["P1"] == (3, 0, 2)
        assert result.new_state.need("P1") == (0, 2, 0)
        # OSC: "the sequence <P1, P3, P4, P0, P2> satisfies the safety requirement"
        assert result.sequence == ("P1", "P3", "P4", "P0", "P2")

    def test_after_it_p4_request_3_3_0_waits_for_lack_of_availability(self) -> None:
        after = request(classic(), "P1", [1, 0, 2]).new_state
        assert after is not None
        result = request(after, "P4", [3, 3, 0])
        assert not result.granted and result.wait and result.new_state is None
        assert "not enough available" in result.reason
        assert result.safe  # the current state stays safe

    def test_after_it_p0_request_0_2_0_waits_because_unsafe(self) -> None:
        after = request(classic(), "P1", [1, 0, 2]).new_state
        assert after is not None
        result = request(after, "P0", [0, 2, 0])
        assert not result.granted and result.wait and not result.safe
        assert "would leave the system unsafe" in result.reason

    def test_a_request_above_the_remaining_need_is_refused_not_queued(self) -> None:
        result = request(classic(), "P3", [1, 1, 0])  # need is (0, 1, 1)
        assert not result.granted and not result.wait
        assert "exceeds its maximum claim" in result.reason

    def test_a_request_may_name_resources(self) -> None:
        result = request(classic(), "P1", {"A": 1, "C": 2})
        assert result.granted

    def test_the_input_state_and_dict_are_never_mutated(self) -> None:
        before = copy.deepcopy(CLASSIC)
        state = BankersState.from_dict(CLASSIC)
        snapshot = state.to_dict()
        request(state, "P1", [1, 0, 2])
        request(state, "P0", [0, 2, 0])
        assert state.to_dict() == snapshot == before
        assert before == CLASSIC

    @pytest.mark.parametrize(
        ("process", "vector", "message"),
        [
            ("P9", [0, 0, 0], "unknown process 'P9'"),
            ("P1", [1, 0], "request of P1 has 2 entries"),
            ("P1", [1, -1, 0], "request of P1[B] must be a non-negative integer"),
            ("P1", {"D": 1}, "unknown resource 'D'"),
        ],
    )
    def test_malformed_requests_raise(self, process: str, vector: Any, message: str) -> None:
        with pytest.raises(BankersError, match=message.replace("[", r"\[")):
            request(classic(), process, vector)


def _broken(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(CLASSIC)
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_broken(("available",), [3, 3]), "available has 2 entries but there are 3 resources"),
        (_broken(("max", "P2"), [9, 0]), r"max\[P2\] has 2 entries"),
        (_broken(("allocation", "P1", 0), -1), r"allocation\[P1\]\[A\] must be a non-negative"),
        (_broken(("allocation", "P1", 0), 1.5), r"allocation\[P1\]\[A\] must be a non-negative"),
        (_broken(("allocation", "P1", 0), True), r"allocation\[P1\]\[A\] must be a non-negative"),
        (_broken(("allocation", "P3", 1), 3), r"allocation\[P3\]\[B\] = 3 exceeds its max"),
        (_broken(("allocation", "P4"), None), "'P4' appears in max but not in allocation"),
        (_broken(("max", "P0"), None), "'P0' appears in allocation but not in max"),
        (_broken(("max", "P0"), {"A": 7, "D": 1}), r"max\[P0\] names unknown resource 'D'"),
        (_broken(("resources",), ["A", "A", "C"]), "duplicate"),
        (_broken(("available",), None), "missing field 'available'"),
        (_broken(("extra",), 1), "unknown field 'extra'"),
        (_broken(("max",), [1, 2]), "max must be an object"),
    ],
)
def test_validation_names_the_offending_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(BankersError, match=message):
        BankersState.from_dict(data)


def test_bankers_error_is_a_value_error() -> None:
    assert issubclass(BankersError, ValueError)


def test_resources_default_to_r0_r1_and_so_on() -> None:
    state = BankersState.from_dict(
        {"available": [1, 1], "max": {"P": [1, 1]}, "allocation": {"P": [0, 0]}}
    )
    assert state.resources == ("R0", "R1")


class TestReport:
    def test_without_a_request_granted_is_none(self) -> None:
        report = to_report(CLASSIC)
        assert report["safe"] is True
        assert report["granted"] is None
        assert report["sequence"] == ["P1", "P3", "P4", "P0", "P2"]
        assert "safe" in report["reason"]

    def test_with_a_request(self) -> None:
        assert to_report(classic(), "P1", [1, 0, 2])["granted"] is True
        report = to_report(CLASSIC, "P3", [1, 1, 0])
        assert report["granted"] is False
        assert "exceeds its maximum claim" in report["reason"]


class TestLiveBanker:
    def test_the_classic_scenario_step_by_step(self) -> None:
        banker = Banker(["A", "B", "C"], [10, 5, 7])
        for p, claim in CLASSIC["max"].items():
            banker.declare(p, claim)
        for p, alloc in CLASSIC["allocation"].items():
            assert banker.request(p, alloc).granted
        assert banker.snapshot() == CLASSIC
        assert banker.request("P1", [1, 0, 2]).granted
        assert banker.state.available == (2, 3, 0)
        assert not banker.request("P4", [3, 3, 0]).granted
        assert not banker.request("P0", [0, 2, 0]).granted
        assert banker.state.available == (2, 3, 0)  # refusals change nothing

    def test_release_and_finish_return_instances(self) -> None:
        banker = Banker.from_dict(CLASSIC)
        banker.release("P2", [1, 0, 0])
        assert banker.state.available == (4, 3, 2)
        assert banker.state.allocation["P2"] == (2, 0, 2)
        banker.finish("P2")
        assert banker.state.available == (6, 3, 4)
        assert "P2" not in banker.snapshot()["max"]

    def test_bad_live_calls_raise_and_change_nothing(self) -> None:
        banker = Banker.from_dict(CLASSIC)
        with pytest.raises(BankersError, match="already declared"):
            banker.declare("P0", [1, 1, 1])
        with pytest.raises(BankersError, match="exceeds the system's total"):
            banker.declare("P5", [11, 0, 0])
        with pytest.raises(BankersError, match=r"releases .* but holds only"):
            banker.release("P0", [1, 0, 0])
        with pytest.raises(BankersError, match="unknown process 'P7'"):
            banker.finish("P7")
        assert banker.snapshot() == CLASSIC


@st.composite
def states(draw: st.DrawFn) -> BankersState:
    width = draw(st.integers(1, 3))
    count = draw(st.integers(1, 6))
    counts = st.lists(st.integers(0, 6), min_size=width, max_size=width)
    maximum = {f"P{i}": draw(counts) for i in range(count)}
    allocation = {p: [draw(st.integers(0, m)) for m in claim] for p, claim in maximum.items()}
    return BankersState.from_dict(
        {"available": draw(counts), "max": maximum, "allocation": allocation}
    )


@given(states())
def test_any_returned_sequence_really_is_executable(state: BankersState) -> None:
    safe, sequence = is_safe(state)
    assert executable(state, sequence)
    assert len(set(sequence)) == len(sequence)
    assert safe == (set(sequence) == set(state.processes))
