"""Kernel page, continued: the allocator's memory map and IPC semaphores and queues."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import ui

from peeros.dashboard.backend import backend
from peeros.dashboard.layout import ErrorLabel, attempt, card, fail, short, stat, table
from peeros.protocol import IpcList

Refresh = Callable[[], Awaitable[None]]
ALLOC_POLICIES = ["first", "best", "worst", "next"]
BLOCK_COLORS = ["#2f5d8a", "#3a9d5d", "#d9822b", "#7b5ea7", "#3a9ca6", "#b8434e"]


def memory_map(alloc: dict[str, Any]) -> list[dict[str, Any]]:
    """Segments with their width in percent of the pool (at least a sliver)."""
    size = max(1, int(alloc.get("size", 1)))
    return [{**seg, "pct": max(0.4, 100.0 * int(seg["size"]) / size)} for seg in alloc["segments"]]


def build_allocator() -> Refresh:
    with card("Memory allocator (this peer's task memory pool, MB)"):
        bar = ui.element("div").classes("w-full flex h-10 rounded overflow-hidden border")
        bar.props("data-testid=memory-map")
        with ui.row().classes("w-full gap-4"):
            policy_now = stat("Policy", "-")
            used = stat("Used", "-")
            free = stat("Free", "-")
            largest = stat("Largest hole", "-")
            holes = stat("Holes", "-")
            frag = stat("External fragmentation", "-")
        with ui.row().classes("w-full gap-2 items-center"):
            policy = ui.select(ALLOC_POLICIES, value="first", label="Fit").classes("w-28")
            set_policy = ui.button("Set fit", icon="tune").props("outline")
            name = ui.input("Block name").classes("w-32").props("dense")
            size = ui.number("Size (MB)", value=100, min=1).classes("w-28").props("dense")
            alloc = ui.button("Allocate", icon="add").props("outline")
            release = ui.button("Free", icon="remove").props("outline")
        errors = ErrorLabel()
    last: dict[str, Any] = {}

    async def op(kind: str, **body: Any) -> None:
        ok, _ = await attempt(lambda c: c.kernel.alloc(kind, **body), errors)
        if ok:
            ui.notify(f"allocator: {kind} done", type="positive")

    async def do_alloc() -> None:
        n = (name.value or "").strip()
        if not n or not size.value:
            fail("allocate: give the block a name and a size", errors)
            return
        await op("alloc", name=n, size=int(size.value))

    async def do_free() -> None:
        n = (name.value or "").strip()
        if not n:
            fail("free: name the block to free", errors)
            return
        await op("free", name=n)

    async def do_policy() -> None:
        await op("policy", policy=str(policy.value))

    alloc.on_click(do_alloc)
    release.on_click(do_free)
    set_policy.on_click(do_policy)

    async def refresh() -> None:
        state = await backend().call(lambda c: c.kernel.alloc("show"))
        if state == last.get("state"):
            return
        last["state"] = state
        stats = state["stats"]
        policy_now.set_text(str(state["policy"]))
        used.set_text(f"{stats['used']} / {stats['total']}")
        free.set_text(str(stats["free"]))
        largest.set_text(str(stats["largest_free"]))
        holes.set_text(str(stats["hole_count"]))
        frag.set_text(f"{stats['external_fragmentation_pct']:.1f} %")
        bar.clear()
        with bar:
            for i, seg in enumerate(memory_map(state)):
                is_hole = seg["kind"] == "hole"
                color = "#e5e7eb" if is_hole else BLOCK_COLORS[i % len(BLOCK_COLORS)]
                what = "hole" if is_hole else short(str(seg.get("name")), 10)
                title = f"{what}: {seg['start']}..{seg['start'] + seg['size']} ({seg['size']} MB)"
                cell = ui.element("div").style(
                    f"width:{seg['pct']:.3f}%;background:{color};min-width:2px"
                )
                cell.classes("h-full text-[10px] text-white overflow-hidden px-1")
                cell.props(f'title="{title}"')
                with cell:
                    if seg["pct"] > 8 and not is_hole:
                        ui.label(what).classes("truncate")

    return refresh


def build_ipc() -> Refresh:
    with card("IPC: semaphores and message queues (this peer)"):
        sems = table(
            [
                ("name", "Semaphore"),
                ("value", "Value / initial"),
                ("holders", "Holders"),
                ("waiters", "Waiters"),
            ],
            [],
            "name",
        )
        queues = table(
            [
                ("name", "Queue"),
                ("length", "Messages / capacity"),
                ("receivers", "Receivers"),
                ("senders", "Senders"),
            ],
            [],
            "name",
        )
        with ui.row().classes("w-full gap-2 items-center"):
            obj = ui.input("Name").classes("w-32").props("dense")
            number = ui.number("Value / capacity", value=1, min=0).classes("w-32").props("dense")
            ui.button("New semaphore", on_click=lambda: create("sem")).props("outline")
            ui.button("New queue", on_click=lambda: create("queue")).props("outline")
            ui.button("Signal", on_click=lambda: act("signal")).props("outline")
            ui.button("Delete", on_click=lambda: act("delete")).props("outline color=negative")
        with ui.row().classes("w-full gap-2 items-center"):
            message = ui.input("Message (JSON)").classes("w-56").props("dense")
            ui.button("Send", on_click=lambda: act("send")).props("outline")
            ui.button("Receive", on_click=lambda: act("recv")).props("outline")
        received = ui.label("").classes("peeros-mono peeros-wrap")
        errors = ErrorLabel()

    def target() -> str | None:
        n = (obj.value or "").strip()
        if not n:
            fail("name the semaphore or queue", errors)
            return None
        return n

    async def create(kind: str) -> None:
        n = target()
        if n is None:
            return
        v = int(number.value or 0)
        if kind == "sem":
            ok, _ = await attempt(lambda c: c.ipc.sem_create(n, v), errors)
        else:
            ok, _ = await attempt(lambda c: c.ipc.queue_create(n, max(1, v)), errors)
        if ok:
            ui.notify(f"created {n}", type="positive")

    async def act(kind: str) -> None:
        n = target()
        if n is None:
            return
        if kind == "signal":
            ok, _ = await attempt(lambda c: c.ipc.sem_signal(n), errors)
        elif kind == "delete":
            ok, _ = await attempt(lambda c: c.ipc.delete(n), errors)
        elif kind == "send":
            try:
                msg = json.loads(message.value or "null")
            except json.JSONDecodeError as exc:
                fail(f"message: invalid JSON ({exc.msg})", errors)
                return
            ok, _ = await attempt(lambda c: c.ipc.send(n, msg, timeout=0), errors)
        else:
            ok, got = await attempt(lambda c: c.ipc.recv(n, timeout=0), errors)
            if ok and got is not None:
                received.set_text(f"received from {got.sender}: {json.dumps(got.message)}")
        if ok:
            ui.notify(f"{kind} {n}: ok", type="positive")

    async def refresh() -> None:
        state: IpcList = await backend().call(lambda c: c.ipc.list())
        sems.rows = [
            {
                "name": s.name,
                "value": f"{s.value} / {s.initial}" + (" (binary)" if s.binary else ""),
                "holders": ", ".join(f"{short(p, 14)} x{n}" for p, n in s.holders.items()),
                "waiters": ", ".join(short(p, 14) for p in s.waiters),
            }
            for s in state.semaphores
        ]
        sems.update()
        queues.rows = [
            {
                "name": q.name,
                "length": f"{q.length} / {q.capacity}",
                "receivers": ", ".join(short(p, 14) for p in q.receivers),
                "senders": ", ".join(short(p, 14) for p in q.senders),
            }
            for q in state.queues
        ]
        queues.update()

    return refresh
