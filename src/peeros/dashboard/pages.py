"""Registers every page (and the download route) with NiceGUI."""

from __future__ import annotations

from nicegui import ui

from peeros.dashboard import cluster, files, kernel, memory, scheduler, stats, tasks

FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    '<circle cx="16" cy="16" r="14" fill="#2f5d8a"/>'
    '<circle cx="10" cy="12" r="3" fill="#fff"/><circle cx="22" cy="12" r="3" fill="#fff"/>'
    '<circle cx="16" cy="22" r="3" fill="#fff"/></svg>'
)


def register() -> None:
    for path, builder in (
        ("/", cluster.page),
        ("/tasks", tasks.page),
        ("/scheduler", scheduler.page),
        ("/memory", memory.page),
        ("/kernel", kernel.page),
        ("/files", files.page),
        ("/stats", stats.page),
    ):
        ui.page(path, response_timeout=20)(builder)
    files.register_routes()
