"""Peer links (``net/link.py``): remote tasks travel over one long-lived WebSocket per
node pair, inside the cluster plane's mutual TLS, against real trackers and peers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from peeros.client import Client
from peeros.errors import BadRequest, Forbidden, PayloadTooLarge, Unavailable, Unreachable
from peeros.net.client import ClusterClient
from peeros.net.link import LinkClient
from peeros.net.link_server import LINK_PATH
from peeros.protocol import (
    ExecuteItem,
    ExecuteRequest,
    ExecuteResponse,
    PlacementRequest,
    Placements,
)
from tests.conftest import FAST_PEER, Nodes, enrollment_client, member_client, wait_until

PROGRAM = "import time\ndef main(s):\n    time.sleep(s)\n    return s\n"


def _execute(*seconds: float) -> ExecuteRequest:
    return ExecuteRequest(
        tasks=[
            ExecuteItem(task_id=uuid.uuid4().hex, program=PROGRAM, function="main", args=[s])
            for s in seconds
        ]
    )


def _links(data_dir: Path, timeout: float = 10.0) -> tuple[ClusterClient, LinkClient]:
    client = member_client(data_dir, timeout)
    return client, LinkClient(client, 64 << 20)


def test_remote_tasks_travel_over_one_link(nodes: Nodes) -> None:
    cluster = nodes.cluster(2)
    first, second = cluster.peers
    with Client(data_dir=first.data_dir) as client, Client(data_dir=second.data_dir) as other:
        origin = client.status().peer_id
        ran = [client.run_program("def main(x):\n    return x\n", "main", [i]) for i in range(30)]
        assert [r.result for r in ran] == list(range(30))
        remote = sum(r.peer_id != origin for r in ran)
        assert remote > 0  # the tracker spreads them over both peers
        assert other.status().link_calls_served == remote  # one link call per remote task
        assert client.status().links_open == 2  # to the other peer and to the tracker, reused


def test_calls_on_one_link_run_at_once_and_answer_out_of_order(nodes: Nodes) -> None:
    tracker = nodes.tracker()
    a = nodes.peer(tracker, "a")
    b = nodes.peer(tracker, "b", extra=[*FAST_PEER, "--slots", "2"])
    finished: list[float] = []

    async def go() -> None:
        client, links = _links(a.data_dir)
        try:

            async def one(s: float) -> None:
                got = await links.call(
                    b.info["address"], "execute", _execute(s), ExecuteResponse, 30
                )
                assert got.results[0].status == "DONE", got.results[0].error
                finished.append(got.results[0].result)

            await asyncio.gather(one(1.5), one(0.0))
            assert links.open_links() == 1
        finally:
            await links.close()
            await client.close()

    asyncio.run(go())
    assert finished == [0.0, 1.5]  # the quick call's reply overtook the slow one's


def test_errors_keep_their_meaning_over_a_link(nodes: Nodes) -> None:
    tracker = nodes.tracker()
    a = nodes.peer(tracker, "a")
    b = nodes.peer(tracker, "b")
    address = b.info["address"]

    async def go() -> None:
        client, links = _links(a.data_dir)
        try:
            bad = ExecuteRequest.model_construct(tasks=[])  # min_length=1 on the executor
            with pytest.raises(BadRequest, match="tasks"):
                await links.call(address, "execute", bad, ExecuteResponse, 10)
            with pytest.raises(BadRequest, match="no link operation 'format_disk'"):
                await links.call(address, "format_disk", _execute(0), ExecuteResponse, 10)
            # Frames that are not calls get an error reply; the link stays usable.
            ws = await client.session().ws_connect(f"https://{address}{LINK_PATH}", compress=0)
            for frame, expected in (
                ("{not json", "not JSON"),
                ('{"op": "execute"}', "integer id"),
                ('{"id": 7, "op": {"x": 1}}', "no link operation"),
            ):
                await ws.send_str(frame)
                reply = await ws.receive_json(timeout=10)
                assert reply["error"]["status"] == 400 and expected in reply["error"]["message"]
            await ws.send_bytes(b"\x00binary")
            closing = await ws.receive(timeout=10)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            await ws.close()
            got = await links.call(address, "execute", _execute(0), ExecuteResponse, 10)
            assert got.results[0].status == "DONE"
            with pytest.raises(Unavailable, match=r"did not answer within 0\.3 s"):
                await links.call(address, "execute", _execute(2), ExecuteResponse, 0.3)
        finally:
            await links.close()
            await client.close()

    asyncio.run(go())


def test_a_non_member_cannot_open_a_link(nodes: Nodes, tmp_path: Path) -> None:
    tracker = nodes.tracker()
    b = nodes.peer(tracker, "b")

    async def go() -> None:
        client = enrollment_client(tracker, tmp_path / "outsider")
        links = LinkClient(client, 1 << 20)
        try:
            # A peer's TLS trusts only the cluster CA: the handshake itself is refused.
            with pytest.raises(Unavailable, match="cannot reach"):
                await links.call(b.info["address"], "execute", _execute(0), ExecuteResponse, 5)
            # The tracker lets an enrollment certificate through TLS, then refuses the link.
            ask = PlacementRequest(count=1)
            with pytest.raises(Forbidden, match="refused the link"):
                await links.call(tracker.info["address"], "placement", ask, Placements, 5)
            assert links.open_links() == 0
        finally:
            await links.close()
            await client.close()

    asyncio.run(go())
    with Client(data_dir=b.data_dir) as client:
        assert client.status().link_calls_served == 0


def test_a_peer_killed_mid_call_fails_the_call_and_then_is_unreachable(nodes: Nodes) -> None:
    tracker = nodes.tracker()
    a = nodes.peer(tracker, "a")
    b = nodes.peer(tracker, "b")
    address = b.info["address"]
    outcome: dict[str, Any] = {}

    async def go() -> None:
        client, links = _links(a.data_dir)
        try:
            call = asyncio.create_task(
                links.call(address, "execute", _execute(30), ExecuteResponse, 60)
            )
            with Client(data_dir=b.data_dir) as other:
                await asyncio.to_thread(
                    wait_until, lambda: other.sched().running, 15
                )  # the task runs on b
            t0 = time.monotonic()
            await asyncio.to_thread(nodes.kill9, b)
            with pytest.raises(Unavailable, match="closed before it answered"):
                await call
            outcome["noticed_after"] = time.monotonic() - t0
            with pytest.raises(Unreachable):
                await links.call(address, "execute", _execute(0), ExecuteResponse, 5)
        finally:
            await links.close()
            await client.close()

    asyncio.run(go())
    assert outcome["noticed_after"] < 10  # the broken link fails the call, no timeout


def test_callers_waiting_for_one_link_share_its_opening(nodes: Nodes) -> None:
    tracker = nodes.tracker()
    a = nodes.peer(tracker, "a")
    # A node that accepts connections and never answers the TLS handshake.
    hole = socket.create_server(("127.0.0.1", 0))
    address = f"127.0.0.1:{hole.getsockname()[1]}"
    accepted: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                accepted.append(hole.accept()[0])

    threading.Thread(target=accept, daemon=True).start()

    async def go() -> list[BaseException | ExecuteResponse]:
        client, links = _links(a.data_dir, timeout=1.0)
        try:
            calls = [links.call(address, "execute", _execute(0), ExecuteResponse, 5) for _ in "abc"]
            return await asyncio.gather(*calls, return_exceptions=True)
        finally:
            await links.close()
            await client.close()

    try:
        outcomes = asyncio.run(go())
        assert all(isinstance(o, Unavailable) for o in outcomes), outcomes
        assert len(accepted) == 1  # one opening, whose failure all three callers got
    finally:
        hole.close()
        for conn in accepted:
            conn.close()


def test_a_call_over_the_frame_limit_is_refused_before_sending(nodes: Nodes) -> None:
    tracker = nodes.tracker()
    a = nodes.peer(tracker, "a")
    b = nodes.peer(tracker, "b")
    address = b.info["address"]

    async def go() -> None:
        client = member_client(a.data_dir, 10)
        links = LinkClient(client, 2000)
        try:
            got = await links.call(address, "execute", _execute(0), ExecuteResponse, 10)
            assert got.results[0].status == "DONE"
            big = _execute(*[0.0] * 20)  # ≈ 2.5 KB of JSON
            with pytest.raises(PayloadTooLarge, match="over the 2000 bytes"):
                await links.call(address, "execute", big, ExecuteResponse, 10)
            got = await links.call(address, "execute", _execute(0), ExecuteResponse, 10)
            assert got.results[0].status == "DONE" and links.open_links() == 1
        finally:
            await links.close()
            await client.close()

    asyncio.run(go())
    with Client(data_dir=b.data_dir) as client:
        assert client.status().link_calls_served == 2  # the refused call never left


def test_a_call_started_on_an_open_link_is_sent_before_start_returns(nodes: Nodes) -> None:
    """``LinkClient.start`` writes the frame itself: the other node gets the call while
    the caller's event loop has not run again (it is blocked here, polling), so an origin
    sends a task first and does its own work while the task runs."""
    tracker = nodes.tracker()
    a = nodes.peer(tracker, "a")
    b = nodes.peer(tracker, "b", extra=FAST_PEER)

    async def go() -> None:
        client, links = _links(a.data_dir)
        try:
            address = b.info["address"]
            await links.call(address, "execute", _execute(0), ExecuteResponse, 30)  # opened
            with Client(data_dir=b.data_dir) as other:
                before = other.status().link_calls_served
                reply = links.start(address, "execute", _execute(0), ExecuteResponse, 30)
                wait_until(lambda: other.status().link_calls_served > before, 10)
            (result,) = (await reply).results
            assert result.status == "DONE", result.error
            with socket.create_server(("127.0.0.1", 0)) as gone:
                port = gone.getsockname()[1]  # (closed again: nothing listens there)
            closed = links.start(f"127.0.0.1:{port}", "execute", _execute(0), ExecuteResponse, 5)
            with pytest.raises(Unreachable):  # no link there yet: opened when awaited
                await closed
        finally:
            await links.close()
            await client.close()

    asyncio.run(go())
