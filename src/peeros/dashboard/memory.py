"""Memory page: set, get, delete and list keys, here or on a chosen peer."""

from __future__ import annotations

import json
from typing import Any

from nicegui import ui

from peeros.client import AsyncClient
from peeros.client_memory import AsyncMemory
from peeros.dashboard.backend import backend
from peeros.dashboard.layout import ErrorLabel, Live, attempt, card, fail, frame, short

HERE = "this peer"


def parse_value(text: str) -> Any:
    """JSON when the text is valid JSON, else the text itself (as ``peeros set-mem``)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def store(client: AsyncClient, target: str) -> AsyncMemory:
    return client.memory if target == HERE else client.memory.on(target)


async def page() -> None:
    with frame("Memory") as banner:
        with card("Key-value store"):
            target = ui.select([HERE], value=HERE, label="Store on").classes("w-full max-w-md")
            key = ui.input("Key").classes("w-full max-w-md").props("data-testid=mem-key")
            value = (
                ui.textarea("Value (JSON, or any text)")
                .classes("w-full")
                .props("rows=3 data-testid=mem-value")
            )
            ttl = ui.number("TTL seconds (empty: never expires)", min=0.001).classes("w-64")
            errors = ErrorLabel()
            with ui.row().classes("gap-2"):
                set_button = ui.button("Set", icon="save")
                get_button = ui.button("Get", icon="download").props("outline")
                del_button = ui.button("Delete", icon="delete", color="negative").props("outline")
            output = ui.code("", language="json").classes("w-full peeros-scroll")
            output.props("data-testid=mem-output")
            output.set_visibility(False)
        with card("Keys"):
            pattern = ui.input("Pattern", value="*").classes("w-full max-w-md")
            keys_box = ui.column().classes("w-full gap-1")

        def chosen_key() -> str | None:
            k = (key.value or "").strip()
            if not k:
                fail("key: enter a key", errors)
                return None
            return k

        def show(text: str) -> None:
            output.set_content(text)
            output.set_visibility(True)

        async def do_set() -> None:
            k = chosen_key()
            if k is None:
                return
            v = parse_value(value.value or "")
            seconds = float(ttl.value) if ttl.value else None
            where = str(target.value)
            ok, entry = await attempt(lambda c: store(c, where).set(k, v, seconds), errors)
            if ok and entry is not None:
                ui.notify(f"set {k} on {short(entry.peer_id)}", type="positive")
                show(json.dumps({"key": k, "value": entry.value, "peer": entry.peer_id}, indent=2))

        async def do_get() -> None:
            k = chosen_key()
            if k is None:
                return
            where = str(target.value)
            ok, entry = await attempt(lambda c: store(c, where).entry(k), errors)
            if ok and entry is not None:
                show(
                    json.dumps(
                        {"key": k, "value": entry.value, "ttl": entry.ttl, "peer": entry.peer_id},
                        indent=2,
                    )
                )

        async def do_delete() -> None:
            k = chosen_key()
            if k is None:
                return
            where = str(target.value)
            ok, _ = await attempt(lambda c: store(c, where).delete(k), errors)
            if ok:
                ui.notify(f"deleted {k}", type="positive")
                output.set_visibility(False)

        set_button.on_click(do_set)
        get_button.on_click(do_get)
        del_button.on_click(do_delete)

        shown: list[str] = ["\0 nothing shown yet"]

        def pick(k: str) -> None:
            key.value = k

        async def refresh() -> None:
            b = backend()
            peers = await b.call(lambda c: c.peers())
            options = [HERE, *(p.peer_id for p in peers if p.alive)]
            if target.options != options:
                target.options = options
                target.update()
            where = str(target.value)
            pat = (pattern.value or "*").strip() or "*"
            keys = await b.call(lambda c: store(c, where).keys(pat))
            if keys == shown:
                return
            shown[:] = keys
            keys_box.clear()
            with keys_box:
                if not keys:
                    ui.label("no keys").classes("opacity-60")
                for k in keys[:200]:
                    ui.button(k, on_click=lambda k=k: pick(k)).props(
                        "flat dense no-caps align=left"
                    ).classes("peeros-mono peeros-wrap max-w-full")
                if len(keys) > 200:
                    ui.label(f"... and {len(keys) - 200} more").classes("opacity-60")

        Live(refresh, banner)
