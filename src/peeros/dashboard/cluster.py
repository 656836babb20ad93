"""Cluster page: this peer, every peer with its load and liveness, load over time."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from nicegui import ui

from peeros.dashboard.backend import backend, peer_load
from peeros.dashboard.layout import Live, card, frame, human_bytes, stat, table
from peeros.protocol import PeerInfo, PeerStatus

PEER_COLUMNS = [
    ("peer", "Peer"),
    ("address", "Address"),
    ("state", "State"),
    ("load", "Load"),
    ("tasks", "Queued / running / slots"),
    ("cpu", "CPU %"),
    ("mem", "Memory free"),
    ("heartbeat", "Last heartbeat"),
]


def peer_rows(peers: list[PeerInfo], me: str) -> list[dict[str, Any]]:
    rows = []
    for p in peers:
        rows.append(
            {
                "id": p.peer_id,
                "peer": p.peer_id + (" (this peer)" if p.peer_id == me else ""),
                "address": p.address,
                "state": p.state,
                "load": f"{peer_load(p):.2f}",
                "tasks": f"{p.load.queued} / {p.load.running} / {p.load.slots}",
                "cpu": f"{p.load.cpu_percent:.0f}",
                "mem": human_bytes(p.load.mem_free),
                "heartbeat": f"{max(0.0, time.time() - p.last_heartbeat):.1f} s ago",
            }
        )
    return rows


def load_chart_options(history: list[tuple[float, dict[str, float]]]) -> dict[str, Any]:
    peers = sorted({pid for _t, loads in history for pid in loads})
    series = [
        {
            "name": pid[:8],
            "type": "line",
            "showSymbol": False,
            "data": [
                [datetime.fromtimestamp(t).strftime("%H:%M:%S"), loads[pid]]
                for t, loads in history
                if pid in loads
            ],
        }
        for pid in peers
    ]
    return {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"type": "scroll", "top": 0},
        "grid": {"left": 40, "right": 10, "top": 30, "bottom": 30},
        "xAxis": {"type": "category", "boundaryGap": False},
        "yAxis": {"type": "value", "name": "load", "min": 0},
        "series": series,
    }


async def page() -> None:
    with frame("Cluster") as banner:
        with card("This peer"), ui.row().classes("w-full gap-4"):
            me = stat("Peer id", "-").classes("peeros-mono")
            addr = stat("Cluster address", "-")
            tracker = stat("Tracker", "-")
            reach = stat("Tracker reachable", "-")
            sandbox = stat("Sandboxed tasks", "-")
            keys = stat("Memory keys", "-")
            uptime = stat("Uptime", "-")
        with card("Peers"):
            peers_table = table(PEER_COLUMNS, [], "id")
            stale = ui.label("").classes("text-warning")
        with card("Load over time (queued + running per slot)"):
            chart = ui.echart(load_chart_options([])).classes("w-full h-64")

        async def refresh() -> None:
            b = backend()
            status: PeerStatus = await b.call(lambda c: c.status())
            me.set_text(status.peer_id)
            addr.set_text(status.address)
            tracker.set_text(status.tracker or "none")
            reach.set_text("yes" if status.tracker_reachable else "NO")
            reach.classes(
                replace="text-base font-medium "
                + ("text-positive" if status.tracker_reachable else "text-negative")
            )
            sandbox.set_text("yes (bubblewrap)" if status.sandboxed else "no (rlimits only)")
            keys.set_text(str(status.memory_keys))
            uptime.set_text(f"{status.uptime:.0f} s")
            peers = await b.call(lambda c: c.peers())
            peers_table.rows = peer_rows(peers, status.peer_id)
            peers_table.update()
            stale.set_text(
                "" if status.tracker_reachable else "the tracker is unreachable: cached list"
            )
            if not b.load_history or time.time() - b.load_history[-1][0] > 1.0:
                b.load_history.append((time.time(), {p.peer_id: peer_load(p) for p in peers}))
            chart.options.clear()
            chart.options.update(load_chart_options(list(b.load_history)))
            chart.update()

        Live(refresh, banner)
