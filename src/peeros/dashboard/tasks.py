"""Tasks page: write and submit a program, see its result or remote traceback, history
with statistics, cancel what is queued or running."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from nicegui import ui
from nicegui.events import GenericEventArguments

from peeros.dashboard.backend import backend
from peeros.dashboard.layout import (
    ErrorLabel,
    Live,
    attempt,
    card,
    describe,
    fail,
    frame,
    seconds,
    short,
    stat,
    table,
)
from peeros.protocol import HistoryResponse, TaskRequest, TaskResult

DEFAULT_PROGRAM = "def main(x):\n    return x * x\n"
HISTORY_LIMIT = 25
ACTIVE = ("QUEUED", "RUNNING")

HISTORY_COLUMNS = [
    ("task", "Task"),
    ("function", "Function"),
    ("status", "Status"),
    ("executor", "Ran on"),
    ("priority", "Priority"),
    ("attempts", "Attempts"),
    ("submitted", "Submitted"),
    ("execution", "Execution"),
    ("turnaround", "Turnaround"),
    ("error", "Error"),
    ("actions", ""),
]

CANCEL_SLOT = r"""
<q-td :props="props">
  <q-btn v-if="props.row.active" dense flat color="negative" icon="cancel" label="Cancel"
         @click="() => $parent.$emit('cancel', props.row)" />
</q-td>
"""


def parse_args(text: str) -> list[Any]:
    """The task's positional arguments: a JSON list (an empty field means none)."""
    if not text.strip():
        return []
    value = json.loads(text)
    if not isinstance(value, list):
        raise ValueError(f"args must be a JSON list such as [5] or [1, 2], got {text.strip()}")
    return value


def history_rows(history: HistoryResponse) -> list[dict[str, Any]]:
    rows = []
    for t in history.tasks:
        submitted = t.get("submitted_at")
        rows.append(
            {
                "id": t["task_id"],
                "task": short(t["task_id"]),
                "function": t.get("function") or "(callable)",
                "status": t["status"],
                "executor": short(t.get("executor")),
                "priority": t.get("priority", 0),
                "attempts": t.get("attempts", 0),
                "submitted": datetime.fromtimestamp(submitted).strftime("%H:%M:%S")
                if submitted
                else "-",
                "execution": seconds(t.get("execution_time")),
                "turnaround": seconds(t.get("turnaround_time")),
                "error": (t.get("error") or "")[:120],
                "active": t["status"] in ACTIVE,
            }
        )
    return rows


def stats_text(stats: dict[str, Any]) -> dict[str, str]:
    rate = stats.get("success_rate")
    return {
        "Tasks": str(stats.get("count", 0)),
        "Done": str(stats.get("done", 0)),
        "Failed": str(stats.get("failed", 0)),
        "Timed out": str(stats.get("timed_out", 0)),
        "Cancelled": str(stats.get("cancelled", 0)),
        "Running": str(stats.get("running", 0)),
        "Success rate": "-" if rate is None else f"{100 * rate:.0f} %",
        "Mean execution": seconds(stats.get("mean_execution_time")),
        "Mean waiting": seconds(stats.get("mean_waiting_time")),
        "Mean turnaround": seconds(stats.get("mean_turnaround_time")),
        "Throughput": f"{stats.get('throughput') or 0:.2f} /s",
    }


def show_result(box: ui.column, result: TaskResult) -> None:
    box.clear()
    with box:
        color = "positive" if result.status == "DONE" else "negative"
        with ui.row().classes("items-center gap-2"):
            ui.badge(result.status, color=color).props("data-testid=task-status")
            ui.label(
                f"task {short(result.task_id)} on peer {short(result.peer_id)}, "
                f"{result.attempts} attempt(s), execution {seconds(result.execution_time)}"
                + (" (cached)" if result.cached else "")
            ).classes("text-sm peeros-wrap")
        if result.status == "DONE":
            ui.label("Result").classes("text-xs opacity-70")
            ui.code(json.dumps(result.result, indent=2), language="json").classes(
                "w-full peeros-scroll"
            ).props("data-testid=task-result")
        else:
            ui.label(result.error or result.status).classes("text-negative peeros-wrap")
            if result.traceback:
                ui.label("Remote traceback").classes("text-xs opacity-70")
                ui.code(result.traceback, language="python").classes("w-full peeros-scroll")


async def page() -> None:
    with frame("Tasks") as banner:
        with card("Run a program"):
            editor = ui.codemirror(DEFAULT_PROGRAM, language="Python").classes(
                "w-full h-48 border rounded"
            )
            with ui.row().classes("w-full gap-2 items-start"):
                function = ui.input("Function", value="main").classes("w-32").props("dense")
                args = (
                    ui.input("Args (JSON list)", value="[5]")
                    .classes("grow min-w-[10rem]")
                    .props("dense data-testid=task-args")
                )
            with ui.row().classes("w-full gap-2 items-center"):
                priority = ui.number("Priority", value=0, min=-1000, max=1000, step=1)
                retries = ui.number("Retries", value=0, min=0, max=10, step=1)
                timeout = ui.number("Timeout (s)", value=60, min=0.1, step=1)
                for field in (priority, retries, timeout):
                    field.classes("w-24").props("dense")
                confidential = ui.checkbox("Confidential (this peer only)")
                elsewhere = ui.checkbox("Elsewhere (another peer)")
                cache = ui.checkbox("Cache result")
            errors = ErrorLabel()
            with ui.row().classes("gap-2"):
                submit = ui.button("Submit", icon="play_arrow")
                cancel_current = ui.button("Cancel", icon="cancel", color="negative")
                cancel_current.set_visibility(False)
            result_box = ui.column().classes("w-full gap-1")
        with card("History"):
            with ui.row().classes("w-full gap-4"):
                stat_labels = {name: stat(name, "-") for name in stats_text({})}
            hist = table(HISTORY_COLUMNS, [], "id")
            hist.add_slot("body-cell-actions", CANCEL_SLOT)
        current: dict[str, str] = {}

        async def run() -> None:
            try:
                request = TaskRequest(
                    program=editor.value,
                    function=(function.value or "").strip() or None,
                    args=parse_args(args.value or ""),
                    priority=int(priority.value or 0),
                    max_retries=int(retries.value or 0),
                    timeout=float(timeout.value or 60),
                    confidential=bool(confidential.value),
                    elsewhere=bool(elsewhere.value),
                    cache=bool(cache.value),
                )
                if not request.function:
                    raise ValueError("function: name the function to call, e.g. main")
            except Exception as exc:
                fail(describe(exc), errors)
                return
            ok, ids = await attempt(lambda c: c.submit_requests([request]), errors)
            if not ok or not ids:
                return
            task_id = ids[0]
            current["id"] = task_id
            submit.disable()
            cancel_current.set_visibility(True)
            result_box.clear()
            with result_box, ui.row().classes("items-center gap-2"):
                ui.spinner(size="sm")
                ui.label(f"task {short(task_id)} submitted; waiting for its result ...")
            try:
                ok, results = await attempt(lambda c: c.results([task_id]), errors)
            finally:
                submit.enable()
                cancel_current.set_visibility(False)
                current.pop("id", None)
            if ok and results:
                show_result(result_box, results[0])
                await refresh()

        async def cancel(task_id: str) -> None:
            ok, resp = await attempt(lambda c: c.cancel(task_id), errors)
            if ok and resp is not None:
                ui.notify(
                    f"task {short(task_id)}: {'cancelled' if resp.cancelled else resp.status}"
                )
                await refresh()

        async def cancel_row(e: GenericEventArguments) -> None:
            await cancel(str(e.args["id"]))

        async def cancel_running() -> None:
            if "id" in current:
                await cancel(current["id"])

        submit.on_click(run)
        cancel_current.on_click(cancel_running)
        hist.on("cancel", cancel_row)

        async def refresh() -> None:
            history = await backend().call(lambda c: c.history(HISTORY_LIMIT))
            hist.rows = history_rows(history)
            hist.update()
            for name, text in stats_text(history.stats).items():
                stat_labels[name].set_text(text)

        Live(refresh, banner)
