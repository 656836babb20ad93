"""Replies written where a result appears: eager futures, ``write_now`` and ``Later``."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import BaseModel

from peeros.eager import EagerFuture, eager_future
from peeros.errors import NotFound
from peeros.net.link_server import Later, LinkServer, write_now
from peeros.net.server import MAX_BODY


async def test_listeners_hear_inside_set_result_before_done_callbacks() -> None:
    future: EagerFuture[int] = eager_future()
    order: list[str] = []
    future.add_done_callback(lambda f: order.append("done-callback"))
    future.listen(lambda f: order.append(f"listener {f.result()}"))
    future.set_result(7)
    assert order == ["listener 7"]  # at once; asyncio's callbacks wait for the loop
    await asyncio.sleep(0)
    assert order == ["listener 7", "done-callback"]
    future.listen(lambda f: order.append("late"))  # settled: told on the spot
    assert order[-1] == "late" and await future == 7


async def test_listeners_hear_of_errors_and_cancellation_and_one_failing_stops_none() -> None:
    failed: EagerFuture[int] = eager_future()
    heard: list[str] = []

    def broken(_: EagerFuture[int]) -> None:
        raise RuntimeError("a listener's bug")

    failed.listen(broken)
    failed.listen(lambda f: heard.append(type(f.exception()).__name__))
    failed.set_exception(NotFound("gone"))
    cancelled: EagerFuture[int] = eager_future()
    cancelled.listen(lambda f: heard.append(f"cancelled={f.cancelled()}"))
    assert cancelled.cancel()
    assert not cancelled.cancel()  # (only the first settling tells)
    assert heard == ["NotFound", "cancelled=True"]
    with pytest.raises(NotFound):
        await failed


class _Ws:
    """Stands in for a WebSocketResponse whose transport pushed back (or is closing)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.written: list[str] = []
        self.error = error
        self.drain: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def send_str(self, text: str) -> None:
        if self.error is not None:
            raise self.error
        self.written.append(text)  # aiohttp writes the frame, then waits for the drain
        await self.drain


async def test_write_now_writes_before_any_drain_and_never_blocks() -> None:
    ws = _Ws()
    write_now(ws, "frame")  # type: ignore[arg-type]
    assert ws.written == ["frame"]  # written in this callback; the drain is not awaited
    write_now(_Ws(ConnectionResetError("closing")), "dropped")  # type: ignore[arg-type]
    write_now(_Ws(RuntimeError("Call .prepare() first")), "dropped")  # type: ignore[arg-type]


class Echo(BaseModel):
    value: int


@pytest.fixture
def later_server() -> Iterator[tuple[str, asyncio.AbstractEventLoop, list[Later]]]:
    """A LinkServer whose ``later`` op answers with a :class:`Later`, on its own loop in
    a thread (so that the test can hold that loop inside the callback that answers)."""
    laters: list[Later] = []

    def later_op(_caller: str, body: str) -> Later:
        later = Later()
        if json.loads(body).get("now"):  # answered before the link has bound it
            later.give(lambda: Echo(value=1))
        laters.append(later)
        return later

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def serve() -> None:
        app = web.Application()
        app[MAX_BODY] = 1 << 20
        LinkServer({"later": later_op}, "/t", caller=lambda _r: "test").add_route(app)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        state["url"] = f"http://127.0.0.1:{runner.addresses[0][1]}/t"
        state["runner"] = runner
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(serve(), loop).result(10)
    assert ready.wait(10)
    try:
        yield state["url"], loop, laters
    finally:
        asyncio.run_coroutine_threadsafe(state["runner"].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def _call(ws: aiohttp.ClientWebSocketResponse, call_id: int, body: dict[str, Any]) -> None:
    await ws.send_str(f'{{"id": {call_id}, "op": "later", "body": {json.dumps(body)}}}')


async def test_a_later_reply_goes_out_inside_the_callback_that_gives_it(
    later_server: tuple[str, asyncio.AbstractEventLoop, list[Later]],
) -> None:
    """The server's loop is held inside the callback that gives the reply until the
    client has it: a reply sent by a task one loop turn later would never arrive."""
    url, server_loop, laters = later_server
    received = threading.Event()
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await _call(ws, 1, {"now": True})  # given before the link bound it: sent at bind
        assert json.loads((await ws.receive(timeout=10)).data) == {"id": 1, "body": {"value": 1}}
        await _call(ws, 2, {})
        deadline = asyncio.get_running_loop().time() + 10
        while len(laters) < 2:
            assert asyncio.get_running_loop().time() < deadline, "the call never arrived"
            await asyncio.sleep(0.01)
        held: dict[str, bool] = {}

        def give_and_hold() -> None:
            laters[1].give(lambda: Echo(value=2))
            held["got"] = received.wait(10)  # the server's loop does nothing else meanwhile

        server_loop.call_soon_threadsafe(give_and_hold)
        reply = await ws.receive(timeout=10)
        received.set()
        assert json.loads(reply.data) == {"id": 2, "body": {"value": 2}}
        await _call(ws, 3, {})
        while len(laters) < 3:
            assert asyncio.get_running_loop().time() < deadline, "the call never arrived"
            await asyncio.sleep(0.01)

        def fail() -> Echo:
            raise NotFound("no such thing")

        server_loop.call_soon_threadsafe(laters[2].give, fail)
        error = json.loads((await ws.receive(timeout=10)).data)
        assert error == {
            "id": 3,
            "error": {"status": 404, "code": "not_found", "message": "no such thing"},
        }
    assert held == {"got": True}
