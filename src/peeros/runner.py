"""Run a node until SIGINT/SIGTERM, with logging set up once."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def run_until_signal(main: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
    """Run ``main(stop)``; SIGINT or SIGTERM sets ``stop`` so it can shut down cleanly."""

    async def wrapper() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    # A node allocates a few small objects per task: move what exists before the loop
    # starts (imports, the node's construction) out of the collector's sight, and let the
    # youngest generation grow before each pass (CPython's 700 makes a busy peer scan its
    # young objects every few tasks).
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(wrapper())


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop (libuv, and TLS in Cython: fewer microseconds per turn of the
    loop and per frame), unless ``PEEROS_EVENT_LOOP=asyncio`` asks for the standard one."""
    if os.environ.get("PEEROS_EVENT_LOOP", "uvloop") == "asyncio":
        return None
    import uvloop

    return uvloop.new_event_loop
