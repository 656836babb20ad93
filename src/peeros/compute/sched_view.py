"""What ``peeros sched show`` and the dashboard see of a live scheduler."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from peeros.compute.scheduler import Scheduler


def snapshot(s: Scheduler) -> dict[str, Any]:
    now = s.clock()
    span = (s._last_finish or now) - (s._first_submit or now)
    return {
        "policy": s.policy_name,
        "quantum_ms": round(s.quantum * 1000, 3),
        "aging": s.aging,
        "slots": s.slots,
        "pipeline": s.pipeline if s.policy_name == "fcfs" else 0,
        "queue": [
            {
                "task_id": j.task_id,
                "priority": j.priority,
                "paused": j.execution is not None and j.wake is None,
                "waiting": round(now - j.enqueued, 4),
                "held": j.held_reason,
            }
            for j in s.ready.values()
        ]
        + [
            {
                "task_id": q.task_id,
                "priority": q.priority,
                "paused": False,
                "waiting": round(now - q.enqueued, 4),
                "held": None,
                "handed_to_worker": True,
            }
            for j in s.running.values()
            for q in j.queued
        ],
        "blocked": [
            {"task_id": j.task_id, "waiting_on": j.waiting_on} for j in s.jobs.values() if j.blocked
        ],
        "running": [
            {
                "task_id": j.task_id,
                "slot": s,
                "running_for": round(now - (j.stint_start or now), 4),
                "next": [q.task_id for q in j.queued],
            }
            for s, j in sorted(s.running.items())
        ],
        "completed": s.completed,
        "avg_waiting": s._sum_wait / s.completed if s.completed else 0.0,
        "avg_turnaround": s._sum_turnaround / s.completed if s.completed else 0.0,
        "throughput": s.completed / span if span > 0 else 0.0,
        "gantt": [list(g) for g in s.gantt],
    }
