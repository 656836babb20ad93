"""What every page shares: the frame (header, left drawer), error messages, live timers.

Errors never reach the page as a stack trace: :func:`attempt` turns any failure into one
clear line, shown with ``ui.notify`` and in the page's error label.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from nicegui import ui
from pydantic import ValidationError

from peeros.client import AsyncClient
from peeros.dashboard.backend import backend
from peeros.errors import PeerOSError

log = logging.getLogger(__name__)
T = TypeVar("T")

#: (path, title, Material icon) of every page, in drawer order.
PAGES: list[tuple[str, str, str]] = [
    ("/", "Cluster", "hub"),
    ("/tasks", "Tasks", "play_circle"),
    ("/scheduler", "Scheduler", "view_timeline"),
    ("/memory", "Memory", "memory"),
    ("/kernel", "Kernel", "developer_board"),
    ("/files", "Files", "folder"),
    ("/stats", "Stats", "insights"),
]

#: Seconds between live refreshes (the issue asks for updates within 2 s).
LIVE_EVERY = 1.0

CSS = """
.peeros-mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
.peeros-wrap { overflow-wrap: anywhere; word-break: break-word; }
.peeros-scroll { max-width: 100%; overflow-x: auto; }
.q-table__container { max-width: 100%; }
"""


def describe(exc: BaseException) -> str:
    """One clear line for a failure: what the user did wrong, or what is down."""
    if isinstance(exc, PeerOSError):
        return exc.message
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors()[:3]:
            where = ".".join(str(x) for x in err.get("loc", ())) or "input"
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return "invalid input: " + "; ".join(parts)
    if isinstance(exc, ValueError | TypeError | KeyError):
        return str(exc) or type(exc).__name__
    return f"unexpected error: {type(exc).__name__}: {exc}"


class ErrorLabel:
    """A red line under a form that shows the last error (hidden when all is well)."""

    def __init__(self) -> None:
        self.label = (
            ui.label("").classes("text-negative peeros-wrap").props("role=alert data-testid=error")
        )
        self.label.set_visibility(False)

    def show(self, message: str) -> None:
        self.label.set_text(message)
        self.label.set_visibility(True)

    def clear(self) -> None:
        self.label.set_text("")
        self.label.set_visibility(False)


async def attempt(
    fn: Callable[[AsyncClient], Awaitable[T]], errors: ErrorLabel | None = None
) -> tuple[bool, T | None]:
    """Run ``fn(client)``; on failure notify the user in the page and return (False, None)."""
    try:
        result = await backend().call(fn)
    except Exception as exc:
        message = describe(exc)
        log.info("dashboard action failed: %s", message)
        ui.notify(message, type="negative", multi_line=True, position="top")
        if errors is not None:
            errors.show(message)
        return False, None
    if errors is not None:
        errors.clear()
    return True, result


def fail(message: str, errors: ErrorLabel | None = None) -> None:
    """Report bad input found before any request was made."""
    ui.notify(message, type="negative", multi_line=True, position="top")
    if errors is not None:
        errors.show(message)


class Live:
    """Calls ``refresh`` every :data:`LIVE_EVERY` seconds; a failure shows in the banner."""

    def __init__(self, refresh: Callable[[], Awaitable[None]], banner: ui.label) -> None:
        self._refresh = refresh
        self._banner = banner
        self._live = False
        self.timer = ui.timer(LIVE_EVERY, self.tick)

    async def tick(self) -> None:
        try:
            await self._refresh()
        except Exception as exc:
            self._banner.set_text(f"cannot refresh: {describe(exc)}")
            self._banner.set_visibility(True)
        else:
            self._banner.set_visibility(False)
            if not self._live:  # a marker tests and screenshots wait for: data is shown
                self._live = True
                self._banner.props("data-live=ok")


@contextmanager
def frame(title: str) -> Iterator[ui.label]:
    """The page frame; yields the banner label that live refreshes report problems in."""
    ui.add_css(CSS)
    # Logged in (the cookie is set): take the token out of the address bar and history.
    ui.add_head_html(
        "<script>if (new URLSearchParams(location.search).has('token')) "
        "history.replaceState(null, '', location.pathname);</script>"
    )
    ui.page_title(f"PeerOS · {title}")
    ui.colors(primary="#2f5d8a")
    with ui.header(elevated=True).classes("items-center px-2 py-1 gap-2"):
        drawer_button = ui.button(icon="menu").props("flat round color=white aria-label=Menu")
        ui.label("PeerOS").classes("text-lg font-bold")
        ui.label(title).classes("text-lg opacity-80")
    drawer = ui.left_drawer(bordered=True).props("width=200")
    with drawer, ui.list().classes("w-full"):
        for path, name, icon in PAGES:
            active = "active" if name == title else ""
            with ui.item().props(f'clickable tag=a href="{path}" {active}').classes("rounded"):
                with ui.item_section().props("avatar"):
                    ui.icon(icon)
                ui.item_section(name)
    drawer_button.on_click(drawer.toggle)
    with ui.column().classes("w-full max-w-screen-xl mx-auto p-2 sm:p-4 gap-4"):
        banner = ui.label("").classes("w-full bg-orange-2 text-orange-10 p-2 rounded peeros-wrap")
        banner.props("data-testid=live-banner")
        banner.set_visibility(False)
        yield banner


def card(title: str) -> ui.card:
    """A titled card that spans the width; use it as a context manager."""
    c = ui.card().classes("w-full")
    with c:
        ui.label(title).classes("text-base font-semibold")
    return c


def table(columns: list[tuple[str, str]], rows: list[dict[str, Any]], key: str) -> ui.table:
    """A dense table that scrolls sideways inside itself on a narrow screen."""
    cols = [{"name": n, "label": label, "field": n, "align": "left"} for n, label in columns]
    return (
        ui.table(columns=cols, rows=rows, row_key=key, pagination=0)
        .props("dense flat bordered wrap-cells hide-pagination")
        .classes("w-full peeros-scroll")
    )


def short(ident: str | None, n: int = 8) -> str:
    return (ident or "-")[:n]


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.1f} ms"
    return f"{value:.2f} s"


def ago(ts: float | None) -> str:
    if not ts:
        return "-"
    return f"{max(0.0, time.time() - ts):.1f} s ago"


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def stat(label: str, value: str) -> ui.label:
    """A small 'label: value' pair; returns the value label so it can be updated."""
    with ui.column().classes("gap-0 min-w-[7rem]"):
        ui.label(label).classes("text-xs opacity-70")
        return ui.label(value).classes("text-base font-medium peeros-wrap")
