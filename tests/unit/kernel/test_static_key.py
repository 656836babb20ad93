"""``Policy.static_key`` orders a queue exactly like ``Policy.key`` at any later time, so
the live scheduler can keep its ready queue in a heap (O(log n) per dispatch)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from peeros.kernel.scheduling import POLICY_NAMES, Task, make_policy

tasks = st.lists(
    st.builds(
        Task,
        name=st.uuids().map(str),
        arrival=st.integers(0, 50),
        remaining=st.integers(1, 20),
        priority=st.integers(0, 9),
        order=st.integers(0, 1000),
        enqueued=st.integers(0, 50),
        ticket=st.integers(0, 1000),
    ),
    min_size=1,
    max_size=12,
    unique_by=lambda t: t.order,
)


@given(
    tasks,
    st.sampled_from(POLICY_NAMES),
    st.sampled_from(["high-first", "low-first"]),
    st.sampled_from([0.0, 0.5, 3.0]),
    st.integers(0, 100),
)
def test_static_key_orders_like_key_at_any_later_time(
    queue: list[Task], name: str, order: str, aging: float, later: int
) -> None:
    policy = make_policy(name, quantum=4, priority_order=order, aging=aging)
    now = max(t.ready_since for t in queue) + later
    by_key = sorted(queue, key=lambda t: policy.key(t, now))
    by_static = sorted(queue, key=policy.static_key)
    assert [policy.key(t, now) for t in by_key] == [policy.key(t, now) for t in by_static]
