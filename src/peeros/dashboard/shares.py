"""Files page, shared files: lookup in the tracker's index (exact, substring, glob or by
SHA-256), flooding search for tracker-less peers, verified downloads with live progress,
the local / downloaded / replicated lists and a rescan button.

All of it goes through the peer's local API (:class:`peeros.client_share.AsyncShare`)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import ui
from nicegui.events import GenericEventArguments

from peeros.client import AsyncClient
from peeros.client_share import AsyncShare
from peeros.dashboard.backend import backend
from peeros.dashboard.layout import ErrorLabel, attempt, card, fail, human_bytes, short, table
from peeros.protocol import DownloadResult, FloodHits, ShareHits, ShareListing

MODES = ["exact", "substring", "glob", "sha256"]
KINDS = ("local", "downloaded", "replicated")
TTL_MIN, TTL_MAX = 1, 16
_SHA = re.compile(r"^[0-9a-f]{64}$")

FETCH_SLOT = r"""
<q-td :props="props">
  <q-btn dense flat icon="cloud_download" label="Download" color="primary"
         data-testid="share-download" @click="() => $parent.$emit('fetch', props.row)" />
</q-td>
"""


def share_of(client: AsyncClient) -> AsyncShare:
    return AsyncShare(client)


def listing_of(kind: str) -> Callable[[AsyncClient], Awaitable[ShareListing]]:
    return lambda c: share_of(c).list(kind)


def check_query(query: str, mode: str) -> tuple[str, str | None]:
    """(query, sha256) for the peer, or ValueError with a clear message."""
    query = query.strip()
    if not query:
        raise ValueError("the query is empty: give a name, a pattern or a SHA-256")
    if mode != "sha256":
        return query, None
    sha = query.lower()
    if not _SHA.match(sha):
        raise ValueError("a SHA-256 is 64 hex digits (0-9, a-f)")
    return "", sha


def check_ttl(value: Any) -> int:
    message = f"TTL must be a whole number of hops from {TTL_MIN} to {TTL_MAX}"
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(message) from None
    if not number.is_integer() or not TTL_MIN <= number <= TTL_MAX:
        raise ValueError(message)
    return int(number)


def hit_rows(hits: ShareHits) -> list[dict[str, Any]]:
    return [
        {
            "key": h.sha256 + h.name,
            "name": h.name,
            "size": human_bytes(h.size),
            "bytes": h.size,
            "sha256": h.sha256[:16],
            "full_sha256": h.sha256,
            "holders": ", ".join(f"{short(x.peer_id)}@{x.address}" for x in h.holders),
            "hops": "-",
        }
        for h in hits.hits
    ]


def flood_rows(hits: FloodHits) -> list[dict[str, Any]]:
    return [
        {
            "key": h.sha256 + h.name + h.holder.peer_id,
            "name": h.name,
            "size": human_bytes(h.size),
            "bytes": h.size,
            "sha256": h.sha256[:16],
            "full_sha256": h.sha256,
            "holders": f"{short(h.holder.peer_id)}@{h.holder.address}",
            "hops": str(h.hops),
        }
        for h in hits.hits
    ]


def result_text(r: DownloadResult) -> str:
    fetched = r.size - r.resumed_bytes
    speed = fetched / r.seconds / 1e6 if r.seconds > 0 else 0.0
    text = (
        f"{r.path}: {r.size} bytes ({human_bytes(r.size)}) from {len(r.sources)} holder(s) "
        f"in {r.seconds:.2f} s, {speed:.2f} MB/s, sha256 {r.sha256[:16]}… verified"
    )
    if r.resumed_bytes:
        text += f", resumed at {human_bytes(r.resumed_bytes)}"
    return text


def build_shared() -> Callable[[], Awaitable[None]]:
    """The shared-files card; returns its live refresh."""
    with card("Shared files"):
        ui.label(
            "Search the tracker's index (or flood the neighbours when there is no tracker) "
            "and download with every chunk verified, into this peer's downloaded/ folder."
        ).classes("text-sm opacity-70 peeros-wrap")
        with ui.row().classes("w-full gap-2 items-end"):
            query = (
                ui.input("Name, pattern or SHA-256")
                .classes("grow min-w-[12rem]")
                .props("data-testid=share-query")
            )
            mode = ui.select(MODES, value="substring", label="Match").classes("w-32")
            ttl = ui.number("TTL (hops)", value=7, min=TTL_MIN, max=TTL_MAX, step=1).classes("w-28")
        with ui.row().classes("gap-2"):
            lookup_btn = ui.button("Look up", icon="search")
            flood_btn = ui.button("Flood search", icon="waves").props("outline")
            rescan_btn = ui.button("Rescan", icon="refresh").props("outline")
        errors = ErrorLabel()
        summary = ui.label("").classes("text-sm peeros-wrap").props("data-testid=share-summary")
        hits = table(
            [
                ("name", "Name"),
                ("size", "Size"),
                ("sha256", "SHA-256"),
                ("holders", "Holders"),
                ("hops", "Hops"),
                ("actions", ""),
            ],
            [],
            "key",
        )
        hits.add_slot("body-cell-actions", FETCH_SLOT)
        hits.props("data-testid=share-hits")
        with ui.column().classes("w-full gap-1") as transfer:
            progress_label = ui.label("").classes("text-sm peeros-wrap")
            progress = ui.linear_progress(value=0, show_value=False).props(
                "size=12px instant-feedback data-testid=share-progress"
            )
            result = ui.label("").classes("text-sm peeros-wrap").props("data-testid=share-result")
        transfer.set_visibility(False)
        ui.label("Folders of this peer").classes("text-sm font-semibold mt-2")
        listing = table(
            [
                ("kind", "Folder"),
                ("name", "Name"),
                ("size", "Size"),
                ("bytes", "Bytes"),
                ("sha256", "SHA-256"),
            ],
            [],
            "key",
        )
        listing.props("data-testid=share-listing")

    async def on_lookup() -> None:
        try:
            q, sha = check_query(str(query.value or ""), str(mode.value))
        except ValueError as exc:
            return fail(str(exc), errors)
        m = "exact" if sha else str(mode.value)
        ok, got = await attempt(lambda c: share_of(c).lookup(q, m, sha), errors)
        if ok and got is not None:
            show(hit_rows(got), f"{len(got.hits)} match(es) in the index", got.seconds, sha)

    async def on_flood() -> None:
        try:
            q, sha = check_query(str(query.value or ""), str(mode.value))
            hops = check_ttl(ttl.value)
        except ValueError as exc:
            return fail(str(exc), errors)
        m = "exact" if sha else str(mode.value)
        ok, got = await attempt(lambda c: share_of(c).search(q, m, sha, hops), errors)
        if ok and got is not None:
            show(flood_rows(got), f"{len(got.hits)} hit(s) within {hops} hops", got.seconds, sha)

    def show(rows: list[dict[str, Any]], what: str, secs: float, sha: str | None) -> None:
        hits.rows = rows
        hits.update()
        summary.set_text(f"{what} ({secs * 1000:.1f} ms)")
        if not rows:
            fail(f"no live peer shares a file with SHA-256 {sha}" if sha else "no match", errors)

    async def on_fetch(e: GenericEventArguments) -> None:
        row = e.args
        name, sha, total = str(row["name"]), str(row["full_sha256"]), int(row["bytes"])
        transfer.set_visibility(True)
        progress_label.set_text(f"downloading {name}: 0 of {human_bytes(total)}")
        progress.set_value(0)
        result.set_text("")

        def on_progress(done: int, size: int) -> None:
            progress.set_value(done / size if size else 1.0)
            progress_label.set_text(
                f"downloading {name}: {human_bytes(done)} of {human_bytes(size)}"
            )

        ok, got = await attempt(
            lambda c: share_of(c).download(None, sha, name, on_progress), errors
        )
        if ok and got is not None:
            progress.set_value(1.0)
            progress_label.set_text(f"downloaded {got.name}")
            result.set_text(result_text(got))
            ui.notify(f"downloaded {got.name}", type="positive")
            await refresh()
        else:
            progress_label.set_text(f"download of {name} failed")

    async def on_rescan() -> None:
        ok, got = await attempt(lambda c: share_of(c).rescan(), errors)
        if ok and got is not None:
            ui.notify(
                f"rescan: {len(got.added)} added, {len(got.changed)} changed, "
                f"{len(got.removed)} removed",
                type="positive",
            )
            await refresh()

    lookup_btn.on_click(on_lookup)
    flood_btn.on_click(on_flood)
    rescan_btn.on_click(on_rescan)
    query.on("keydown.enter", on_lookup)
    hits.on("fetch", on_fetch)

    async def refresh() -> None:
        rows: list[dict[str, Any]] = []
        for kind in KINDS:
            got = await backend().call(listing_of(kind))
            rows += [
                {
                    "key": f"{kind}/{f.name}",
                    "kind": kind,
                    "name": f.name,
                    "size": human_bytes(f.size),
                    "bytes": str(f.size),
                    "sha256": f.sha256[:16],
                }
                for f in got.files
            ]
        if rows != listing.rows:
            listing.rows = rows
            listing.update()

    return refresh
