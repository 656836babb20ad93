"""The local lane (``client_lane.py``, ``GET /v1/lane``): the blocking client's task
submissions travel as frames on one WebSocket to its peer, against real peers."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from peeros.client import Client
from peeros.client_endpoint import resolve_endpoint
from peeros.client_http import BlockingHTTP
from peeros.client_lane import BlockingLane, NoLane
from peeros.errors import BadRequest, Unauthorized
from peeros.protocol import PROTOCOL_HEADER, PROTOCOL_VERSION
from tests.conftest import Nodes
from tests.http_stub import Quiet, serving

PROGRAM = "def main(x):\n    return x\n"


def test_tasks_go_over_the_lane_and_reuse_it(nodes: Nodes) -> None:
    tracker = nodes.tracker()
    peer = nodes.peer(tracker, "a")
    with Client(data_dir=peer.data_dir) as client:
        before = client.status().lane_calls_served
        results = [client.run_program(PROGRAM, "main", [i]) for i in range(5)]
        assert [r.result for r in results] == list(range(5))
        assert client.call(pow, 2, 10) == 1024
        assert client.status().lane_calls_served == before + 6
        assert client._lane is not None and len(client._lane._idle) == 1  # one, reused


def test_bad_input_over_the_lane_is_refused_and_the_lane_goes_on(nodes: Nodes) -> None:
    tracker = nodes.tracker()
    peer = nodes.peer(tracker, "a")
    with Client(data_dir=peer.data_dir) as client:
        with pytest.raises(BadRequest, match="function 'nope' is not defined"):
            client.run_program(PROGRAM, "nope", [1])
        with pytest.raises(BadRequest, match="invalid program"):
            client.run_program("def main(:", "main", [1])
        assert client.history(limit=10).tasks == []  # nothing was queued
        assert client.run_program(PROGRAM, "main", [7]).result == 7  # same lane, still fine


def test_a_wrong_token_is_refused_before_the_upgrade(nodes: Nodes) -> None:
    tracker = nodes.tracker()
    peer = nodes.peer(tracker, "a")
    url = resolve_endpoint(data_dir=peer.data_dir).url
    with Client(peer=url, token="not-the-token") as client, pytest.raises(Unauthorized):
        client.run_program(PROGRAM, "main", [1])
    with Client(data_dir=peer.data_dir) as client:
        assert client.history(limit=10).tasks == []


def test_bad_frames_get_error_frames(nodes: Nodes) -> None:
    tracker = nodes.tracker()
    peer = nodes.peer(tracker, "a")
    endpoint = resolve_endpoint(data_dir=peer.data_dir)

    async def go() -> list[dict[str, object]]:
        headers = {
            "Authorization": f"Bearer {endpoint.token}",
            PROTOCOL_HEADER: str(PROTOCOL_VERSION),
        }
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(endpoint.url + "/v1/lane", headers=headers) as ws,
        ):
            replies = []
            for text in (
                "not json",
                '{"id": 1, "op": "format_disk", "body": {}}',
                '{"id": 2, "op": "submit", "body": {"tasks": []}}',
                '{"id": 3, "op": "submit", "body": {"wait": 99, "tasks": [{}]}}',
                '{"id": 4, "op": "submit", "body": {"tasks": [{"program": '
                '"def main(x):\\n    return x\\n", "function": "main", "args": [NaN]}]}}',
            ):
                await ws.send_str(text)
                replies.append(await ws.receive_json(timeout=10))
            return replies

    replies = asyncio.run(go())
    assert [r.get("id") for r in replies] == [None, 1, 2, 3, 4]
    assert all(r["error"]["status"] == 400 for r in replies)  # type: ignore[index]
    messages = [str(r["error"]["message"]) for r in replies]  # type: ignore[index]
    assert "not JSON" in messages[0]
    assert "format_disk" in messages[1]
    assert "tasks" in messages[2]
    assert "wait" in messages[3]
    assert "NaN" in messages[4]  # a worker could not be handed them: refused up front
    with Client(data_dir=peer.data_dir) as client:
        assert client.history(limit=10).tasks == []


def test_a_peer_without_a_lane_is_called_over_http() -> None:
    """An older peer (no ``/v1/lane``) answers 404 to the upgrade: HTTP from then on."""

    class NotFound(Quiet):
        def do_GET(self) -> None:
            self.send_error(404)

    with serving(NotFound) as port:
        lane = BlockingLane(BlockingHTTP(f"http://127.0.0.1:{port}", "t", 5.0))
        with pytest.raises(NoLane):
            lane.call("submit", b"{}")
        assert lane.missing
        with pytest.raises(NoLane):  # not asked again
            lane.call("submit", b"{}")


def test_nan_args_are_refused_over_http_too(nodes: Nodes) -> None:
    tracker = nodes.tracker()
    peer = nodes.peer(tracker, "a")
    endpoint = resolve_endpoint(data_dir=peer.data_dir)
    body = '{"program": "def main(x):\\n    return x\\n", "function": "main", "args": [Infinity]}'

    async def go() -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {endpoint.token}", "Content-Type": "application/json"}
        async with (
            aiohttp.ClientSession() as session,
            session.post(endpoint.url + "/v1/tasks", data=body, headers=headers) as resp,
        ):
            return resp.status, (await resp.json())["error"]["message"]

    status, message = asyncio.run(go())
    assert status == 400 and "Infinity" in message
    with Client(data_dir=peer.data_dir) as client:
        assert client.history(limit=10).tasks == []
