"""Sending a file the dashboard fetched from the cluster to the browser."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from peeros.dashboard.layout import describe
from peeros.errors import NotFound, PeerOSError


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
