"""Files page: the files stored on a peer (list, upload from the browser, download to
the browser, delete), owned files (:mod:`.owned`) and shared files (:mod:`.shares`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi.responses import FileResponse
from nicegui import app, ui
from nicegui.events import GenericEventArguments, UploadEventArguments

from peeros.client import AsyncClient
from peeros.client_files import AsyncFiles
from peeros.dashboard import owned, shares
from peeros.dashboard.backend import backend
from peeros.dashboard.layout import (
    ErrorLabel,
    Live,
    attempt,
    card,
    frame,
    human_bytes,
    short,
    table,
)
from peeros.dashboard.transfers import serve_fetched, with_uploaded
from peeros.protocol import FileInfo

HERE = "this peer"
DOWNLOAD_PATH = "/files/download"

ACTIONS_SLOT = r"""
<q-td :props="props">
  <q-btn dense flat icon="download" label="Download" color="primary" :href="props.row.href"
         download data-testid="file-download" />
  <q-btn dense flat icon="delete" color="negative" label="Delete"
         @click="() => $parent.$emit('delete', props.row)" />
</q-td>
"""


def files_of(client: AsyncClient, target: str) -> AsyncFiles:
    return client.files if target == HERE else client.files.on(target)


def file_rows(files: list[FileInfo], target: str) -> list[dict[str, Any]]:
    on = "" if target == HERE else f"?on={quote(target, safe='')}"
    return [
        {
            "name": f.name,
            "size": human_bytes(f.size),
            "sha256": f.sha256[:16],
            "modified": datetime.fromtimestamp(f.modified).strftime("%Y-%m-%d %H:%M:%S"),
            "peer": short(f.peer_id),
            "href": f"{DOWNLOAD_PATH}/{quote(f.name, safe='')}{on}",
        }
        for f in files
    ]


async def download(name: str, on: str | None = None) -> FileResponse:
    """Fetch ``name`` from the peer (verified) into a temp file and send it to the browser."""
    target = on or HERE
    return await serve_fetched(
        name, lambda path: backend().call(lambda c: files_of(c, target).get(name, path))
    )


def register_routes() -> None:
    app.get(DOWNLOAD_PATH + "/{name}")(download)
    owned.register_routes()


async def page() -> None:
    with frame("Files") as banner:
        with card("Files on a peer"):
            target = ui.select([HERE], value=HERE, label="Peer").classes("w-full max-w-md")
            upload = (
                ui.upload(label="Upload files", multiple=True, auto_upload=True)
                .classes("w-full max-w-md")
                .props("data-testid=file-upload")
            )
            errors = ErrorLabel()
            listing = table(
                [
                    ("name", "Name"),
                    ("size", "Size"),
                    ("sha256", "SHA-256"),
                    ("modified", "Modified"),
                    ("peer", "Peer"),
                    ("actions", ""),
                ],
                [],
                "name",
            )
            listing.add_slot("body-cell-actions", ACTIONS_SLOT)
            listing.props("data-testid=file-table")
        refresh_owned = owned.build_owned()
        refresh_shared = shares.build_shared()

        async def on_upload(e: UploadEventArguments) -> None:
            where = str(target.value)

            async def store(path: Path, name: str) -> None:
                ok, info = await attempt(lambda c: files_of(c, where).put(name, path), errors)
                if ok and info is not None:
                    ui.notify(f"stored {info.name} ({human_bytes(info.size)})", type="positive")
                    await refresh()

            await with_uploaded(e, store)
            upload.reset()

        async def on_delete(e: GenericEventArguments) -> None:
            name = str(e.args["name"])
            where = str(target.value)
            ok, _ = await attempt(lambda c: files_of(c, where).delete(name), errors)
            if ok:
                ui.notify(f"deleted {name}", type="positive")
                await refresh()

        upload.on_upload(on_upload)
        listing.on("delete", on_delete)

        async def refresh() -> None:
            b = backend()
            peers = await b.call(lambda c: c.peers())
            options = [HERE, *(p.peer_id for p in peers if p.alive)]
            if target.options != options:
                target.options = options
                target.update()
            where = str(target.value)
            files = await b.call(lambda c: files_of(c, where).list())
            rows = file_rows(files, where)
            if rows != listing.rows:
                listing.rows = rows
                listing.update()
            await refresh_owned()
            await refresh_shared()

        Live(refresh, banner)
