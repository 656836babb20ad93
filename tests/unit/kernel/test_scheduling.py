"""CPU scheduling policies and simulator, checked against published textbook examples.

"OSC10" below is Silberschatz, Galvin, Gagne, *Operating System Concepts*, 10th ed.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peeros.kernel import scheduling, scheduling_sim
from peeros.kernel.scheduling import (
    POLICY_NAMES,
    PriorityPolicy,
    RoundRobinPolicy,
    SchedulingError,
    Task,
    exponential_average,
    make_policy,
)
from peeros.kernel.scheduling_sim import SimulationResult, SimulationSpec, simulate


def jobs(*rows: tuple[Any, ...]) -> list[dict[str, Any]]:
    """Rows of (name, arrival, burst[, priority]) as spec job dicts."""
    keys = ("name", "arrival", "burst", "priority")
    return [dict(zip(keys, row, strict=False)) for row in rows]


def waits(result: SimulationResult) -> dict[str, Any]:
    return {job.name: job.waiting for job in result.jobs}


# --- textbook examples -------------------------------------------------------------------


def test_fcfs_convoy() -> None:
    # OSC10 §5.3.1, FCFS: P1=24, P2=3, P3=3 all at 0 -> waits 0, 24, 27, average 17.
    result = simulate({"policy": "fcfs", "jobs": jobs(("P1", 0, 24), ("P2", 0, 3), ("P3", 0, 3))})
    assert waits(result) == {"P1": 0, "P2": 24, "P3": 27}
    assert result.avg_waiting == 17
    assert result.gantt == (("P1", 0, 24), ("P2", 24, 27), ("P3", 27, 30))


def test_fcfs_short_jobs_first() -> None:
    # OSC10 §5.3.1, same bursts in order P2, P3, P1 -> waits 6, 0, 3, average 3.
    result = simulate({"policy": "fcfs", "jobs": jobs(("P2", 0, 3), ("P3", 0, 3), ("P1", 0, 24))})
    assert waits(result) == {"P1": 6, "P2": 0, "P3": 3}
    assert result.avg_waiting == 3


def test_sjf() -> None:
    # OSC10 §5.3.2, SJF: P1=6, P2=8, P3=7, P4=3 -> P4, P1, P3, P2; average wait 7.
    result = simulate(
        {"policy": "sjf", "jobs": jobs(("P1", 0, 6), ("P2", 0, 8), ("P3", 0, 7), ("P4", 0, 3))}
    )
    assert result.gantt == (("P4", 0, 3), ("P1", 3, 9), ("P3", 9, 16), ("P2", 16, 24))
    assert waits(result) == {"P1": 3, "P2": 16, "P3": 9, "P4": 0}
    assert result.avg_waiting == 7


def test_srtf() -> None:
    # OSC10 §5.3.2, preemptive SJF: arrivals 0,1,2,3 bursts 8,4,9,5 -> average wait 6.5.
    spec = {
        "policy": "srtf",
        "jobs": jobs(("P1", 0, 8), ("P2", 1, 4), ("P3", 2, 9), ("P4", 3, 5)),
    }
    result = simulate(spec)
    assert result.gantt == (
        ("P1", 0, 1),
        ("P2", 1, 5),
        ("P4", 5, 10),
        ("P1", 10, 17),
        ("P3", 17, 26),
    )
    assert waits(result) == {"P1": 9, "P2": 0, "P3": 15, "P4": 2}
    assert result.avg_waiting == 6.5
    # Non-preemptive SJF on the same jobs runs P1 to completion first (OSC10 notes 7.75).
    assert simulate({**spec, "policy": "sjf"}).avg_waiting == 7.75


def test_priority_nonpreemptive_low_first() -> None:
    # OSC10 §5.3.4: bursts 10,1,2,1,5, priorities 3,1,4,5,2 (low number = high priority)
    # -> P2, P5, P1, P3, P4; average wait 8.2.
    result = simulate(
        {
            "policy": "priority",
            "priority_order": "low-first",
            "jobs": jobs(
                ("P1", 0, 10, 3), ("P2", 0, 1, 1), ("P3", 0, 2, 4), ("P4", 0, 1, 5), ("P5", 0, 5, 2)
            ),
        }
    )
    assert [name for name, _, _ in result.gantt] == ["P2", "P5", "P1", "P3", "P4"]
    assert waits(result) == {"P1": 6, "P2": 0, "P3": 16, "P4": 18, "P5": 1}
    assert result.avg_waiting == 8.2


def test_round_robin_quantum_4() -> None:
    # OSC10 §5.3.3, RR q=4 on P1=24, P2=3, P3=3 -> waits 6, 4, 7, average 17/3 = 5.66.
    result = simulate(
        {"policy": "rr", "quantum": 4, "jobs": jobs(("P1", 0, 24), ("P2", 0, 3), ("P3", 0, 3))}
    )
    assert result.gantt == (("P1", 0, 4), ("P2", 4, 7), ("P3", 7, 10), ("P1", 10, 30))
    assert waits(result) == {"P1": 6, "P2": 4, "P3": 7}
    assert result.avg_waiting == round(17 / 3, 4)


def test_exponential_average_prediction() -> None:
    # OSC10 §5.3.2, Figure 5.4: alpha=1/2, tau0=10, bursts 6,4,6,4,13,13,13
    # -> predictions 10, 8, 6, 6, 5, 9, 11, 12.
    predictions = [10.0]
    for burst in (6, 4, 6, 4, 13, 13, 13):
        predictions.append(exponential_average(predictions[-1], burst, alpha=0.5))
    assert predictions == [10, 8, 6, 6, 5, 9, 11, 12]


# --- conventions -------------------------------------------------------------------------


def test_rr_arrival_at_quantum_expiry_is_queued_before_preempted_job() -> None:
    # Textbook RR convention (OSC10 §5.3.3, as in its exercises): at t=2 A's quantum ends
    # (B arrived at 1, so B, A); at t=4 C arrives exactly as B's quantum ends, so C is
    # queued before B: queue A, C, B. The opposite convention would give A, B, C.
    result = simulate(
        {"policy": "rr", "quantum": 2, "jobs": jobs(("A", 0, 5), ("B", 1, 3), ("C", 4, 2))}
    )
    assert result.gantt == (
        ("A", 0, 2),
        ("B", 2, 4),
        ("A", 4, 6),
        ("C", 6, 8),
        ("B", 8, 9),
        ("A", 9, 10),
    )


def test_rr_lone_job_keeps_running_and_slices_merge() -> None:
    result = simulate({"policy": "rr", "quantum": 1, "jobs": jobs(("A", 0, 3), ("B", 5, 1))})
    assert result.gantt == (("A", 0, 3), (None, 3, 5), ("B", 5, 6))


def test_priority_preemptive_high_first() -> None:
    # Constructed case (OSC10 §5.3.4 preemptive priority): H preempts L; M does not preempt
    # H; E has M's priority, so it does not preempt M (only strictly better preempts).
    result = simulate(
        {
            "policy": "priority-preemptive",
            "priority_order": "high-first",
            "jobs": jobs(("L", 0, 5, 1), ("H", 2, 2, 5), ("M", 3, 3, 3), ("E", 5, 1, 3)),
        }
    )
    assert result.gantt == (("L", 0, 2), ("H", 2, 4), ("M", 4, 7), ("E", 7, 8), ("L", 8, 11))
    assert result.job("L").response == 0
    assert result.job("L").waiting == 6


def test_srtf_tie_does_not_preempt_and_ties_go_to_earlier_arrival() -> None:
    result = simulate({"policy": "srtf", "jobs": jobs(("A", 0, 4), ("B", 1, 3), ("C", 1, 3))})
    # At t=1 A has 3 left: B's 3 is not strictly better, A keeps the CPU; then B before C.
    assert result.gantt == (("A", 0, 4), ("B", 4, 7), ("C", 7, 10))


def test_idle_gap_is_none_and_metrics() -> None:
    result = simulate({"policy": "fcfs", "jobs": jobs(("A", 1, 2), ("B", 5, 1))})
    assert result.gantt == (("A", 1, 3), (None, 3, 5), ("B", 5, 6))
    assert result.makespan == 5  # last finish 6 - first arrival 1
    assert result.throughput == 0.4
    assert result.avg_response == 0


def test_float_times_and_plain_json_output() -> None:
    result = simulate({"policy": "fcfs", "jobs": jobs(("A", 0, 1.5), ("B", 0.5, 2))})
    data: dict[str, Any] = result.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["gantt"] == [["A", 0, 1.5], ["B", 1.5, 3.5]]
    assert data["jobs"][1] == {
        "name": "B",
        "arrival": 0.5,
        "burst": 2,
        "priority": 0,
        "start": 1.5,
        "finish": 3.5,
        "waiting": 1,
        "turnaround": 3,
        "response": 1,
    }
    assert type(data["jobs"][1]["waiting"]) is int  # integral results stay ints
    assert data["avg_waiting"] == 0.5
    assert data["throughput"] == round(2 / 3.5, 4)


def test_float_inputs_are_read_as_decimals() -> None:
    # 0.3 means 3/10 exactly, so no 1e-17 slivers appear and outputs print as typed.
    result = simulate({"policy": "rr", "quantum": 0.3, "jobs": jobs(("A", 0, 1), ("B", 0, 0.5))})
    assert result.gantt == (
        ("A", 0, 0.3),
        ("B", 0.3, 0.6),
        ("A", 0.6, 0.9),
        ("B", 0.9, 1.1),
        ("A", 1.1, 1.5),
    )
    assert result.job("A").waiting == 0.5


# --- live-style use of the Policy interface ----------------------------------------------


def _starvation_run(aging: float, steps: int) -> int | None:
    """Each tick a fresh high-priority task arrives and the policy picks one to run for a
    tick; return the tick at which the low-priority task ``low`` was picked, if ever."""
    policy = make_policy("priority", priority_order="high-first", aging=aging)
    ready = [Task("low", arrival=0, remaining=1, priority=1, order=0)]
    for now in range(steps):
        ready.append(Task(f"high{now}", arrival=now, remaining=1, priority=5, order=now + 1))
        chosen = policy.select(ready, now)
        assert chosen is not None
        if chosen.name == "low":
            return now
        ready.remove(chosen)
    return None


def test_without_aging_low_priority_starves() -> None:
    assert _starvation_run(aging=0.0, steps=200) is None


def test_aging_lets_starving_low_priority_run() -> None:
    # Effective priority 1 + 0.5 * t reaches a fresh task's 5 at t = 8, and the tie goes to
    # the earlier arrival.
    assert _starvation_run(aging=0.5, steps=200) == 8


def test_aging_in_preemptive_priority() -> None:
    # Age counts from Task.enqueued, for the running task too, so an aged task that got
    # the CPU keeps its boost rather than being bounced by the next fresh arrival.
    aged = PriorityPolicy(preemptive=True, priority_order="high-first", aging=1.0)
    plain = PriorityPolicy(preemptive=True, priority_order="high-first")
    low = Task("low", arrival=0, remaining=5, priority=1, enqueued=0)
    fresh = Task("high", arrival=10, remaining=5, priority=5, enqueued=10)
    assert aged.effective_priority(low, 10) == 11
    assert not aged.should_preempt(running=low, candidate=fresh, now=10)
    assert plain.should_preempt(running=low, candidate=fresh, now=10)
    # Linear aging shifts both tasks alike, so how two tasks compare depends only on their
    # base priorities and enqueue stamps: low has waited 6 longer, outweighing a gap of 4.
    running = Task("high", arrival=6, remaining=5, priority=5, enqueued=6)
    assert aged.should_preempt(running=running, candidate=low, now=6)  # 7 > 5
    assert aged.should_preempt(running=running, candidate=low, now=60)  # 61 > 59
    assert not plain.should_preempt(running=running, candidate=low, now=100)
    tied = Task("high", arrival=4, remaining=5, priority=5, enqueued=4)
    assert not aged.should_preempt(running=tied, candidate=low, now=9)  # 10 vs 10: a tie


def test_policy_interface_decisions() -> None:
    rr = make_policy("rr", quantum=3)
    assert isinstance(rr, RoundRobinPolicy)
    assert rr.quantum == 3 and not rr.preemptive
    # Same enqueue time: the smaller ticket (admitted first) goes first.
    queue = [Task("old", 0, 5, enqueued=4, ticket=7), Task("new", 4, 5, enqueued=4, ticket=6)]
    chosen = rr.select(queue, 4)
    assert chosen is not None and chosen.name == "new"
    assert rr.select([], 0) is None
    srtf = make_policy("srtf")
    assert srtf.should_preempt(Task("a", 0, 5), Task("b", 1, 4), 1)
    assert not srtf.should_preempt(Task("a", 0, 5), Task("b", 1, 5), 1)
    assert not make_policy("sjf").should_preempt(Task("a", 0, 5), Task("b", 1, 1), 1)
    assert not make_policy("fcfs").should_preempt(Task("a", 0, 5), Task("b", 1, 1), 1)
    assert {make_policy(name, quantum=1).name for name in POLICY_NAMES} == set(POLICY_NAMES)


# --- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: make_policy("lottery"), "unknown policy 'lottery'"),
        (lambda: make_policy("rr"), "requires a quantum"),
        (lambda: make_policy("rr", quantum=0), "quantum must be > 0"),
        (lambda: make_policy("rr", quantum=-1), "quantum must be > 0"),
        (lambda: make_policy("priority", priority_order="up"), "unknown priority_order 'up'"),
        (lambda: make_policy("priority", aging=-0.1), "aging must be >= 0"),
        (lambda: exponential_average(1, 1, alpha=2), "alpha"),
    ],
)
def test_make_policy_rejects_bad_parameters(call: Any, message: str) -> None:
    with pytest.raises(SchedulingError, match=message):
        call()


GOOD: dict[str, Any] = {
    "policy": "rr",
    "quantum": 2,
    "jobs": jobs(("P1", 0, 4, 1), ("P2", 1, 3, 2)),
}


def _with_job(index: int, **changes: Any) -> dict[str, Any]:
    spec = {**GOOD, "jobs": [dict(job) for job in GOOD["jobs"]]}
    for key, value in changes.items():
        if value is _DROP:
            del spec["jobs"][index][key]
        else:
            spec["jobs"][index][key] = value
    return spec


_DROP = object()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({**GOOD, "policy": "lottery"}, "unknown policy 'lottery'"),
        ({**GOOD, "policy": None}, "unknown policy None"),
        ({**GOOD, "quantum": 0}, "quantum must be > 0"),
        ({**GOOD, "quantum": None}, "quantum must be a number"),
        ({**GOOD, "quantum": "4"}, "quantum must be a number"),
        ({**GOOD, "priority_order": "up"}, "unknown priority_order 'up'"),
        ({**GOOD, "jobs": []}, "jobs must be a non-empty list"),
        ({**GOOD, "jobs": "P1"}, "jobs must be a non-empty list"),
        ({**GOOD, "quantom": 2}, r"spec: unknown field\(s\) \['quantom'\]"),
        ({**GOOD, "jobs": [*GOOD["jobs"], 7]}, r"jobs\[2\] must be an object"),
        (_with_job(1, arrival=_DROP), r"jobs\[1\] \('P2'\): missing field\(s\) \['arrival'\]"),
        (_with_job(0, burst=-3), "job 'P1': burst must be > 0"),
        (_with_job(0, burst=0), "job 'P1': burst must be > 0"),
        (_with_job(1, arrival=-1), "job 'P2': arrival must be >= 0"),
        (_with_job(1, arrival="soon"), "job 'P2': arrival must be a number, got 'soon'"),
        (_with_job(1, burst=True), "job 'P2': burst must be a number"),
        (_with_job(1, burst=float("nan")), "job 'P2': burst must be finite"),
        (_with_job(1, priority=-1), "job 'P2': priority must be >= 0"),
        (_with_job(1, name="P1"), "duplicate job name 'P1'"),
        (_with_job(1, name=""), "name must be a non-empty string"),
        (_with_job(1, colour="red"), r"unknown field\(s\) \['colour'\]"),
        (
            {**_with_job(1, priority=_DROP), "policy": "priority"},
            r"jobs\[1\] \('P2'\): missing field\(s\) \['priority'\]",
        ),
    ],
)
def test_simulate_rejects_bad_specs(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(SchedulingError, match=message):
        simulate(spec)


def test_scheduling_error_is_value_error_and_quantum_ignored_outside_rr() -> None:
    assert issubclass(SchedulingError, ValueError)
    spec = SimulationSpec.from_dict({**GOOD, "policy": "fcfs", "quantum": 0})
    assert spec.quantum is None
    assert simulate(spec).gantt == (("P1", 0, 4), ("P2", 4, 7))


def test_public_surface() -> None:
    for module in (scheduling, scheduling_sim):
        public = {name for name in vars(module) if not name.startswith("_")}
        assert set(module.__all__) <= public


# --- properties --------------------------------------------------------------------------

# Tenths exercise inexact binary floats; results are exact inside and only rounded on
# output, so pathological magnitudes (1e-300 next to 2) would merely blur in the output.
_times = st.one_of(
    st.integers(min_value=0, max_value=20),
    st.integers(min_value=0, max_value=200).map(lambda k: k / 10),
)
_bursts = st.one_of(
    st.integers(min_value=1, max_value=10),
    st.integers(min_value=1, max_value=100).map(lambda k: k / 10),
)
_job_rows = st.lists(
    st.tuples(_times, _bursts, st.integers(min_value=0, max_value=5)), min_size=1, max_size=8
)


@settings(max_examples=150, deadline=None)
@given(
    rows=_job_rows,
    policy=st.sampled_from(POLICY_NAMES),
    quantum=st.one_of(st.integers(min_value=1, max_value=5), st.sampled_from([0.3, 0.75])),
    order=st.sampled_from(["high-first", "low-first"]),
    aging=st.sampled_from([0.0, 0.5]),
)
def test_every_policy_runs_every_job_exactly(
    rows: list[tuple[float, float, int]], policy: str, quantum: float, order: str, aging: float
) -> None:
    spec = {
        "policy": policy,
        "quantum": quantum,
        "priority_order": order,
        "aging": aging,
        "jobs": [
            {"name": f"J{i}", "arrival": a, "burst": b, "priority": p}
            for i, (a, b, p) in enumerate(rows)
        ],
    }
    result = simulate(spec)
    ran: dict[str, float] = defaultdict(float)
    for (name, start, end), following in zip(result.gantt, (*result.gantt[1:], None), strict=True):
        assert start < end
        if following is not None:
            assert following[1] == end  # contiguous, never overlapping
            assert following[0] != name  # same-job neighbours are merged
        if name is not None:
            ran[name] += end - start
    assert result.gantt[0][1] == min(a for a, _, _ in rows)
    by_name = {job.name: job for job in result.jobs}
    assert set(by_name) == set(ran)  # every job ran, and finished
    for i, (arrival, burst, _) in enumerate(rows):
        job = by_name[f"J{i}"]
        assert math.isclose(ran[job.name], burst, rel_tol=1e-9, abs_tol=1e-9)
        assert math.isclose(job.waiting, job.turnaround - burst, abs_tol=1e-9)
        assert job.waiting >= 0 and job.response >= 0
        assert arrival <= job.start < job.finish
        assert job.finish == max(end for name, _, end in result.gantt if name == job.name)
