"""Stats page, query and transfer statistics of shared files (``GET /v1/share/stats``):
search time and download speed (mean, stdev, min, max), throughput, and the latest
per-query and per-download records."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from nicegui import ui

from peeros.client_share import AsyncShare
from peeros.dashboard.backend import backend
from peeros.dashboard.layout import card, human_bytes, seconds, stat, table
from peeros.protocol import ShareSummary

SUMMARY = ("Count", "Mean", "Stdev", "Min", "Max")
#: Records shown in each table (the peer keeps more).
SHOWN = 20


def when(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S")


def summary_texts(s: ShareSummary, fmt: Callable[[float], str]) -> dict[str, str]:
    return {
        "Count": str(s.count),
        "Mean": fmt(s.mean) if s.count else "-",
        "Stdev": fmt(s.stdev) if s.count else "-",
        "Min": fmt(s.min) if s.count else "-",
        "Max": fmt(s.max) if s.count else "-",
    }


def mbps(value: float) -> str:
    return f"{value:.2f} MB/s"


def query_rows(queries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "id": q.get("id", i),
            "at": when(float(q["at"])),
            "query": str(q["query"])[:64],
            "mode": q["mode"],
            "time": seconds(float(q["seconds"])),
            "results": q["results"],
        }
        for i, q in enumerate(queries[:SHOWN])
    ]


def download_rows(downloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for i, d in enumerate(downloads[:SHOWN]):
        fetched = int(d["bytes"]) - int(d["resumed_bytes"])
        secs = float(d["seconds"])
        rows.append(
            {
                "id": d.get("id", i),
                "at": when(float(d["at"])),
                "name": d["name"],
                "size": human_bytes(int(d["bytes"])),
                "time": seconds(secs),
                "speed": mbps(fetched / secs / 1e6) if secs > 0 else "-",
                "sources": d["sources"],
                "resumed": human_bytes(int(d["resumed_bytes"])),
            }
        )
    return rows


def build_share_stats() -> Callable[[], Awaitable[None]]:
    """The query and transfer statistics cards; returns their live refresh."""
    with card("Query statistics (shared-file lookups and flooding searches)"):
        with ui.row().classes("w-full gap-4"):
            search = {name: stat(f"Search time {name.lower()}", "-") for name in SUMMARY}
        queries = table(
            [
                ("at", "At"),
                ("query", "Query"),
                ("mode", "Mode"),
                ("time", "Time"),
                ("results", "Results"),
            ],
            [],
            "id",
        )
        queries.props("data-testid=share-queries")
    with card("Transfer statistics (downloads of shared files)"):
        with ui.row().classes("w-full gap-4"):
            speed = {name: stat(f"Speed {name.lower()}", "-") for name in SUMMARY}
            throughput = stat("Throughput", "-")
        downloads = table(
            [
                ("at", "At"),
                ("name", "Name"),
                ("size", "Size"),
                ("time", "Time"),
                ("speed", "Speed"),
                ("sources", "Sources"),
                ("resumed", "Resumed"),
            ],
            [],
            "id",
        )
        downloads.props("data-testid=share-downloads")

    async def refresh() -> None:
        st = await backend().call(lambda c: AsyncShare(c).stats())
        for name, text in summary_texts(st.search_seconds, seconds).items():
            search[name].set_text(text)
        for name, text in summary_texts(st.download_mbps, mbps).items():
            speed[name].set_text(text)
        throughput.set_text(mbps(st.throughput_mbps) if st.download_mbps.count else "-")
        for t, rows in (
            (queries, query_rows(st.queries)),
            (downloads, download_rows(st.downloads)),
        ):
            if rows != t.rows:
                t.rows = rows
                t.update()

    return refresh
