"""Stats page: task statistics from the history, scheduler averages, result cache and
worker counters; query and transfer statistics of shared files (:mod:`.share_stats`)."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from peeros.dashboard.backend import backend
from peeros.dashboard.layout import Live, card, frame, seconds, stat
from peeros.dashboard.share_stats import build_share_stats
from peeros.dashboard.tasks import stats_text

OUTCOMES = [
    ("done", "#3a9d5d"),
    ("failed", "#b8434e"),
    ("timed_out", "#d9822b"),
    ("cancelled", "#5b6b7b"),
    ("running", "#2f5d8a"),
    ("queued", "#7b5ea7"),
]


def outcome_chart(stats: dict[str, Any]) -> dict[str, Any]:
    return {
        "animation": False,
        "tooltip": {"trigger": "item"},
        "legend": {"bottom": 0, "type": "scroll"},
        "series": [
            {
                "type": "pie",
                "radius": ["35%", "65%"],
                "label": {"show": False},
                "data": [
                    {"name": name, "value": stats.get(name, 0), "itemStyle": {"color": color}}
                    for name, color in OUTCOMES
                    if stats.get(name)
                ],
            }
        ],
    }


async def page() -> None:
    with frame("Stats") as banner:
        with card("Tasks (history of this peer)"):
            with ui.row().classes("w-full gap-4"):
                task_stats = {name: stat(name, "-") for name in stats_text({})}
            chart = ui.echart(outcome_chart({})).classes("w-full h-56")
        with card("Scheduler"), ui.row().classes("w-full gap-4"):
            sched = {
                name: stat(name, "-")
                for name in (
                    "Policy",
                    "Completed",
                    "Avg waiting",
                    "Avg turnaround",
                    "Throughput",
                )
            }
        with card("Result cache"), ui.row().classes("w-full gap-4"):
            cache = {
                name: stat(name.replace("_", " ").capitalize(), "-")
                for name in (
                    "hits",
                    "misses",
                    "hit_rate",
                    "entries",
                    "evictions",
                    "expirations",
                )
            }
        with card("Sandboxed workers"), ui.row().classes("w-full gap-4"):
            workers = {
                name: stat(name.capitalize(), "-")
                for name in (
                    "total",
                    "idle",
                    "busy",
                    "started",
                    "recycled",
                    "crashed",
                    "killed",
                )
            }
        refresh_shares = build_share_stats()
        last: dict[str, Any] = {}

        async def refresh() -> None:
            b = backend()
            history = await b.call(lambda c: c.history(1))
            for name, text in stats_text(history.stats).items():
                task_stats[name].set_text(text)
            if history.stats != last.get("stats"):
                last["stats"] = history.stats
                chart.options.clear()
                chart.options.update(outcome_chart(history.stats))
                chart.update()
            st = await b.call(lambda c: c.sched())
            sched["Policy"].set_text(st.policy)
            sched["Completed"].set_text(str(st.completed))
            sched["Avg waiting"].set_text(seconds(st.avg_waiting))
            sched["Avg turnaround"].set_text(seconds(st.avg_turnaround))
            sched["Throughput"].set_text(f"{st.throughput:.2f} /s")
            for name, label in cache.items():
                value = st.cache.get(name, 0.0)
                label.set_text(f"{100 * value:.0f} %" if name == "hit_rate" else f"{value:g}")
            for name, label in workers.items():
                label.set_text(str(st.workers.get(name, 0)))
            await refresh_shares()

        Live(refresh, banner)
