"""Files page, owned files: encrypted on this peer, held by other peers as ciphertext.

Upload from the browser (encrypted by the peer before any byte leaves it), download
(decrypted and verified by the peer, then sent to the browser), delete, and the list
with each file's holders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi.responses import FileResponse
from nicegui import app, ui
from nicegui.events import GenericEventArguments, UploadEventArguments

from peeros.dashboard.backend import backend
from peeros.dashboard.layout import ErrorLabel, attempt, card, human_bytes, short, table
from peeros.dashboard.transfers import serve_fetched, with_uploaded
from peeros.protocol import OwnedRecord

DOWNLOAD_PATH = "/owned/download"

ACTIONS_SLOT = r"""
<q-td :props="props">
  <q-btn dense flat icon="download" label="Download" color="primary" :href="props.row.href"
         download data-testid="owned-download" />
  <q-btn dense flat icon="delete" color="negative" label="Delete"
         @click="() => $parent.$emit('delete', props.row)" />
</q-td>
"""


def owned_rows(records: list[OwnedRecord]) -> list[dict[str, Any]]:
    return [
        {
            "name": r.name,
            "size": human_bytes(r.size),
            "replicas": f"{sum(h.alive for h in r.holders)} live / {r.replicas or len(r.holders)}",
            "holders": ", ".join(
                short(h.peer_id) + ("" if h.alive else " (down)") for h in r.holders
            ),
            "created": datetime.fromtimestamp(r.created).strftime("%Y-%m-%d %H:%M:%S"),
            "href": f"{DOWNLOAD_PATH}/{quote(r.name, safe='')}",
        }
        for r in records
    ]


async def download(name: str) -> FileResponse:
    """Fetch, verify and decrypt ``name`` and send it to the browser."""
    return await serve_fetched(
        name, lambda path: backend().call(lambda c: c.owned.download(name, path))
    )


def register_routes() -> None:
    app.get(DOWNLOAD_PATH + "/{name}")(download)


def build_owned() -> Callable[[], Awaitable[None]]:
    """The owned-files card; returns its live refresh."""
    with card("Owned files (encrypted here, stored on other peers)"):
        with ui.row().classes("w-full gap-2 items-center"):
            replicas = ui.number("Replicas", value=2, min=1, max=16, step=1).classes("w-24")
            upload = (
                ui.upload(label="Upload and encrypt", multiple=True, auto_upload=True)
                .classes("grow max-w-md")
                .props("data-testid=owned-upload")
            )
        errors = ErrorLabel()
        listing = table(
            [
                ("name", "Name"),
                ("size", "Size"),
                ("replicas", "Replicas"),
                ("holders", "Holders"),
                ("created", "Created"),
                ("actions", ""),
            ],
            [],
            "name",
        )
        listing.add_slot("body-cell-actions", ACTIONS_SLOT)

    async def on_upload(e: UploadEventArguments) -> None:
        count = int(replicas.value or 2)

        async def store(path: Path, name: str) -> None:
            ok, record = await attempt(lambda c: c.owned.upload(path, name, count), errors)
            if ok and record is not None:
                ui.notify(
                    f"encrypted {record.name} onto {len(record.holders)} peer(s)", type="positive"
                )
                await refresh()

        await with_uploaded(e, store)
        upload.reset()

    async def on_delete(e: GenericEventArguments) -> None:
        name = str(e.args["name"])
        ok, _ = await attempt(lambda c: c.owned.delete(name), errors)
        if ok:
            ui.notify(f"deleted {name} everywhere", type="positive")
            await refresh()

    upload.on_upload(on_upload)
    listing.on("delete", on_delete)

    async def refresh() -> None:
        records = await backend().call(lambda c: c.owned.list())
        rows = owned_rows(records)
        if rows != listing.rows:
            listing.rows = rows
            listing.update()

    return refresh
