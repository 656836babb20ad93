"""The dashboard process: bind, serve NiceGUI behind the token gate, write dashboard.json.

The socket is bound here (port 0 picks a free port), so the real port is known before
uvicorn starts; ``dashboard.json`` is written once the application has started, which
is what ``peeros up`` and the tests wait for. With ``parent_pid`` (``peeros peer
--web-ui``) the dashboard exits as soon as its peer process is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import socket
import sys
from pathlib import Path

from peeros.dashboard.auth import INFO_FILE, TokenGate, load_or_create_token
from peeros.dashboard.backend import Backend, configure
from peeros.fsutil import write_json

log = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(False)
    return sock


def url_host(host: str) -> str:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if ip.is_unspecified:
        return "127.0.0.1" if ip.version == 4 else "[::1]"
    return f"[{host}]" if ip.version == 6 else host


def login_url(info: dict[str, object], token: str) -> str:
    return f"{info['url']}?token={token}"


def read_info(data_dir: Path) -> dict[str, object] | None:
    """``dashboard.json`` of a running dashboard, or None."""
    try:
        info: dict[str, object] = json.loads((data_dir / INFO_FILE).read_text())
    except (OSError, ValueError):
        return None
    return info


async def _watch_parent(parent_pid: int) -> None:
    from nicegui import app

    while True:
        await asyncio.sleep(0.5)
        if os.getppid() != parent_pid:
            break
    log.info("the peer (pid %d) is gone; stopping the dashboard", parent_pid)
    app.shutdown()


def serve(
    data_dir: Path,
    host: str = "127.0.0.1",
    port: int = 5000,
    peer: str | None = None,
    token: str | None = None,
    parent_pid: int | None = None,
) -> None:
    """Run the dashboard until SIGINT/SIGTERM (or the parent's exit)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    # NiceGUI changes its behaviour under pytest (a test that starts us sets this).
    os.environ.pop("PYTEST_CURRENT_TEST", None)
    os.environ.setdefault("NICEGUI_STORAGE_PATH", str(data_dir / "dashboard-storage"))

    import uvicorn
    from fastapi import FastAPI
    from nicegui import app, ui

    from peeros.dashboard import pages  # registers every page

    dash_token = load_or_create_token(data_dir)
    backend = Backend(peer, token, None if peer else data_dir)
    configure(backend)
    sock = bind(host, port)
    bound_port = sock.getsockname()[1]
    info: dict[str, object] = {
        "url": f"http://{url_host(host)}:{bound_port}/",
        "host": host,
        "port": bound_port,
        "pid": os.getpid(),
        "data_dir": str(data_dir),
        "token_file": str(data_dir / "dashboard.token"),
    }
    sampler: list[asyncio.Task[None]] = []

    async def started() -> None:
        sampler.append(asyncio.create_task(backend.sample_forever()))
        if parent_pid is not None:
            sampler.append(asyncio.create_task(_watch_parent(parent_pid)))
        write_json(data_dir / INFO_FILE, info)
        sys.stdout.write(f"dashboard: {login_url(info, dash_token)}\n")
        sys.stdout.flush()

    async def stopped() -> None:
        for task in sampler:
            task.cancel()
        await backend.close()
        current = read_info(data_dir)
        if current is not None and current.get("pid") == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                (data_dir / INFO_FILE).unlink()

    app.on_startup(started)
    app.on_shutdown(stopped)
    pages.register()
    outer = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    ui.run_with(
        outer,
        title="PeerOS",
        favicon=pages.FAVICON,
        show_welcome_message=False,
        reconnect_timeout=10.0,
    )
    config = uvicorn.Config(
        TokenGate(outer, dash_token),
        log_level="warning",
        ws="wsproto",
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    log.info("dashboard on %s for %s", info["url"], peer or data_dir)
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        sock.close()
