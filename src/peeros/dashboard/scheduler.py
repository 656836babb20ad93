"""Scheduler page: switch policy and quantum, the live queue and Gantt chart, averages,
and the textbook simulator with an editable job table."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from peeros.dashboard.backend import backend
from peeros.dashboard.gantt import live_gantt, simulated_gantt
from peeros.dashboard.layout import (
    ErrorLabel,
    Live,
    attempt,
    card,
    fail,
    frame,
    seconds,
    short,
    stat,
    table,
)
from peeros.protocol import SchedState

POLICIES = ["fcfs", "sjf", "srtf", "priority", "priority-preemptive", "rr"]

DEFAULT_JOBS: list[dict[str, Any]] = [
    {"name": "P1", "arrival": 0, "burst": 24, "priority": 3},
    {"name": "P2", "arrival": 0, "burst": 3, "priority": 1},
    {"name": "P3", "arrival": 0, "burst": 3, "priority": 4},
]

SIM_COLUMNS = [
    ("name", "Job"),
    ("arrival", "Arrival"),
    ("burst", "Burst"),
    ("priority", "Priority"),
    ("start", "Start"),
    ("finish", "Finish"),
    ("waiting", "Waiting"),
    ("turnaround", "Turnaround"),
    ("response", "Response"),
]


def queue_rows(state: SchedState) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for r in state.running:
        rows.append(
            {
                "id": r["task_id"],
                "task": short(r["task_id"]),
                "state": f"running on slot {r['slot']}",
                "detail": f"for {seconds(r.get('running_for'))}",
            }
        )
    for q in state.queue:
        detail = f"waiting {seconds(q.get('waiting'))}, priority {q.get('priority')}"
        if q.get("held"):
            detail += f" ({q['held']})"
        rows.append(
            {
                "id": q["task_id"],
                "task": short(q["task_id"]),
                "state": "paused" if q.get("paused") else "ready",
                "detail": detail,
            }
        )
    for b in state.blocked:
        rows.append(
            {
                "id": b["task_id"],
                "task": short(b["task_id"]),
                "state": "waiting",
                "detail": str(b.get("waiting_on") or ""),
            }
        )
    return rows


def job_spec(
    policy: str, quantum: float | None, order: str, jobs: list[dict[str, Any]]
) -> dict[str, Any]:
    spec: dict[str, Any] = {"policy": policy, "priority_order": order, "jobs": []}
    if policy == "rr":
        spec["quantum"] = quantum
    for i, job in enumerate(jobs, 1):
        name = str(job.get("name") or "").strip() or f"P{i}"
        entry: dict[str, Any] = {"name": name}
        for key in ("arrival", "burst", "priority"):
            value = job.get(key)
            if value is None:
                raise ValueError(f"job {name}: {key} is empty")
            entry[key] = int(value) if float(value).is_integer() else float(value)
        spec["jobs"].append(entry)
    return spec


def build_live(banner: ui.label) -> None:
    with card("Policy"):
        with ui.row().classes("w-full gap-2 items-center"):
            policy = (
                ui.select(POLICIES, value="fcfs", label="Policy", new_value_mode="add-unique")
                .props("dense use-input input-debounce=0 data-testid=policy-select")
                .classes("w-56")
            )
            quantum = ui.number("Quantum (ms)", value=100, min=1, step=10).classes("w-32")
            aging = ui.number("Aging (/s)", value=0.5, min=0, step=0.1).classes("w-28")
            apply = ui.button("Apply", icon="check").props("data-testid=policy-apply")
        errors = ErrorLabel()
        with ui.row().classes("w-full gap-4"):
            current = stat("Active policy", "-").props("data-testid=active-policy")
            slots = stat("Slots", "-")
            completed = stat("Completed", "-")
            avg_wait = stat("Avg waiting", "-")
            avg_tat = stat("Avg turnaround", "-")
            throughput = stat("Throughput", "-")
            workers = stat("Workers idle / busy", "-")
    with card("Live Gantt chart (recent slices per worker slot)"):
        chart = ui.echart(live_gantt([], 1)).classes("w-full h-56")
    with card("Running, ready and waiting tasks"):
        queue = table([("task", "Task"), ("state", "State"), ("detail", "Detail")], [], "id")
    loaded = {"form": False}

    async def do_apply() -> None:
        name = str(policy.value or "").strip()
        if not name:
            fail("choose a policy", errors)
            return
        q = float(quantum.value) if quantum.value else None
        a = float(aging.value) if aging.value is not None else None
        ok, state = await attempt(lambda c: c.set_sched(name, q, a), errors)
        if ok and state is not None:
            ui.notify(f"scheduler: {state.policy} (quantum {state.quantum_ms:g} ms)")
            await refresh()

    apply.on_click(do_apply)

    async def refresh() -> None:
        state: SchedState = await backend().call(lambda c: c.sched())
        if not loaded["form"]:
            policy.value = state.policy
            quantum.value = state.quantum_ms
            aging.value = state.aging
            loaded["form"] = True
        current.set_text(f"{state.policy} ({state.quantum_ms:g} ms)")
        slots.set_text(str(state.slots))
        completed.set_text(str(state.completed))
        avg_wait.set_text(seconds(state.avg_waiting))
        avg_tat.set_text(seconds(state.avg_turnaround))
        throughput.set_text(f"{state.throughput:.2f} /s")
        workers.set_text(f"{state.workers.get('idle', 0)} / {state.workers.get('busy', 0)}")
        chart.options.clear()
        chart.options.update(live_gantt(state.gantt, state.slots))
        chart.update()
        queue.rows = queue_rows(state)
        queue.update()

    Live(refresh, banner)


def build_simulator() -> None:
    jobs: list[dict[str, Any]] = [dict(j) for j in DEFAULT_JOBS]
    with card("Simulator (deterministic, textbook conventions)"):
        with ui.row().classes("w-full gap-2 items-center"):
            policy = ui.select(POLICIES, value="rr", label="Simulated policy").classes("w-48")
            quantum = ui.number("Quantum", value=4, min=0.001).classes("w-24")
            order = ui.select(["high-first", "low-first"], value="low-first", label="Priority")
            order.classes("w-32")

        @ui.refreshable
        def job_table() -> None:
            for i, job in enumerate(jobs):
                with ui.row().classes("w-full gap-1 items-center no-wrap"):
                    ui.input("Job").bind_value(job, "name").classes("w-16").props("dense")
                    for key, label in (("arrival", "Arrival"), ("burst", "Burst")):
                        ui.number(label).bind_value(job, key).classes("w-16").props("dense")
                    ui.number("Prio").bind_value(job, "priority").classes("w-14").props("dense")
                    ui.button(icon="delete", on_click=lambda i=i: remove(i)).props(
                        "flat dense round aria-label=Remove"
                    )

        def remove(i: int) -> None:
            jobs.pop(i)
            job_table.refresh()

        def add() -> None:
            jobs.append({"name": f"P{len(jobs) + 1}", "arrival": 0, "burst": 1, "priority": 0})
            job_table.refresh()

        job_table()
        errors = ErrorLabel()
        with ui.row().classes("gap-2"):
            ui.button("Add job", icon="add", on_click=add).props("outline")
            run = ui.button("Simulate", icon="play_arrow")
        averages = ui.label("").classes("peeros-wrap")
        result_table = table(SIM_COLUMNS, [], "name")
        chart = ui.echart(simulated_gantt([])).classes("w-full h-40")

    async def simulate() -> None:
        try:
            spec = job_spec(str(policy.value), quantum.value, str(order.value), jobs)
        except (TypeError, ValueError) as exc:
            fail(str(exc), errors)
            return
        ok, result = await attempt(lambda c: c.simulate(spec), errors)
        if not ok or result is None:
            return
        result_table.rows = result["jobs"]
        result_table.update()
        averages.set_text(
            f"average waiting {result['avg_waiting']}, turnaround {result['avg_turnaround']}, "
            f"response {result['avg_response']}; throughput {result['throughput']} "
            f"(makespan {result['makespan']})"
        )
        chart.options.clear()
        chart.options.update(simulated_gantt(result["gantt"]))
        chart.update()

    run.on_click(simulate)


async def page() -> None:
    with frame("Scheduler") as banner:
        build_live(banner)
        build_simulator()
