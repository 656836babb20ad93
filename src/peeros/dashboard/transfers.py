"""Files between the browser and the cluster: uploads saved to a private temp file first,
downloads fetched (verified) into one and sent to the browser."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from fastapi.responses import FileResponse
from nicegui.events import UploadEventArguments
from starlette.background import BackgroundTask

from peeros.dashboard.layout import describe
from peeros.errors import NotFound, PeerOSError


async def with_uploaded(
    e: UploadEventArguments, store: Callable[[Path, str], Awaitable[Any]]
) -> None:
    """Save the browser's upload to a private temp file, then ``store(path, name)``; the
    temp file goes whatever happens."""
    workdir = Path(tempfile.mkdtemp(prefix="peeros-dash-"))
    try:
        path = workdir / "upload"
        await e.file.save(path)
        await store(path, e.file.name)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def serve_fetched(name: str, fetch: Callable[[Path], Awaitable[Any]]) -> FileResponse:
    """``fetch(path)`` saves the file (verified by the client) into a private temp dir;
    the browser then gets it as ``name`` and the dir goes once sent. A missing file is a
    404, any other failure a 502, each with the reason; nothing is left behind."""
    workdir = Path(tempfile.mkdtemp(prefix="peeros-dash-"))
    try:
        await fetch(workdir / "file")
    except NotFound as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        raise HTTPException(status_code=404, detail=exc.message) from None
    except PeerOSError as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        raise HTTPException(status_code=502, detail=describe(exc)) from None
    return FileResponse(
        workdir / "file",
        filename=name,
        media_type="application/octet-stream",
        background=BackgroundTask(shutil.rmtree, workdir, True),
    )
