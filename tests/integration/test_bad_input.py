"""Bad input on every route: the right status, a message naming the problem, no change."""

from __future__ import annotations

import asyncio
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from peeros.launcher import NodeProcess
from peeros.security import pki
from tests.conftest import Nodes


async def raw_call(
    data_dir: Path,
    url: str,
    method: str = "POST",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Send raw bytes over mutual TLS as the member whose credentials are in data_dir."""
    ctx = pki.client_context(pki.Credentials.from_dir(data_dir))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as s:
        data = io.BytesIO(body) if body is not None else None
        async with s.request(method, url, data=data, headers=headers or {}) as r:
            return r.status, await r.json()


def call(
    peer: NodeProcess,
    url: str,
    method: str = "POST",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    return asyncio.run(raw_call(peer.data_dir, url, method, body, headers))


@pytest.fixture
def pair(nodes: Nodes) -> tuple[NodeProcess, NodeProcess]:
    tracker = nodes.tracker()
    return tracker, nodes.peer(tracker, "p1", extra=["--heartbeat-interval", "60"])


def registry(peer: NodeProcess, tracker: NodeProcess) -> list[dict[str, Any]]:
    status, body = call(peer, f"https://{tracker.info['address']}/v1/peers", "GET")
    assert status == 200
    return list(body["peers"])


HEARTBEAT_CASES = [
    (b"{not json", 400, "not valid JSON"),
    (b"[1, 2]", 400, "must be a JSON object"),
    (b"{}", 400, "address: Field required"),
    (json.dumps({"address": "127.0.0.1:1", "load": {"slots": 0}}).encode(), 400, "load.slots"),
    (json.dumps({"address": "no port", "load": {}}).encode(), 400, "address"),
    (json.dumps({"address": "127.0.0.1:1", "load": {}, "admin": True}).encode(), 400, "admin"),
    (json.dumps({"address": "127.0.0.1:1", "load": {"queued": -1}}).encode(), 400, "load.queued"),
]


@pytest.mark.parametrize(("body", "status", "fragment"), HEARTBEAT_CASES)
def test_bad_heartbeats_are_refused_and_change_nothing(
    pair: tuple[NodeProcess, NodeProcess], body: bytes, status: int, fragment: str
) -> None:
    tracker, peer = pair
    before = registry(peer, tracker)
    got, reply = call(
        peer,
        f"https://{tracker.info['address']}/v1/heartbeat",
        body=body,
        headers={"Content-Type": "application/json"},
    )
    assert got == status
    assert fragment in reply["error"]["message"]
    assert registry(peer, tracker) == before


def test_tracker_route_errors(pair: tuple[NodeProcess, NodeProcess]) -> None:
    tracker, peer = pair
    base = f"https://{tracker.info['address']}"
    status, body = call(peer, base + "/v1/nope", "GET")
    assert (status, body["error"]["code"]) == (404, "not_found")
    assert "GET /v1/nope" in body["error"]["message"]
    status, body = call(peer, base + "/v1/heartbeat", "GET")
    assert status == 405
    status, body = call(peer, base + "/v1/heartbeat", body=b"x" * (2 << 20))
    assert status == 413 and "too large" in body["error"]["message"]
    status, body = call(
        peer, base + "/v1/enroll", body=json.dumps({"secret": "", "csr_pem": "x"}).encode()
    )
    assert status == 400 and "secret" in body["error"]["message"]
    status, body = call(peer, base + "/v1/placement", body=json.dumps({"cpu": 0}).encode())
    assert status == 400 and "cpu" in body["error"]["message"]
    status, body = call(peer, base + "/v1/placement", body=json.dumps({"exclude": ["x"]}).encode())
    assert status == 400 and "exclude.0" in body["error"]["message"]
    status, body = call(peer, base + "/v1/status", "GET", headers={"PeerOS-Protocol": "99"})
    assert status == 400 and "protocol version 99" in body["error"]["message"]


def test_enroll_with_a_garbage_csr_issues_nothing(pair: tuple[NodeProcess, NodeProcess]) -> None:
    tracker, peer = pair
    secret = pki.JoinToken.parse((tracker.data_dir / "join-token").read_text()).secret
    status, body = call(
        peer,
        f"https://{tracker.info['address']}/v1/enroll",
        body=json.dumps({"secret": secret, "csr_pem": "garbage"}).encode(),
    )
    assert status == 400 and "csr_pem" in body["error"]["message"]


def test_leaving_twice_and_placing_with_no_live_peer(nodes: Nodes) -> None:
    tracker = nodes.tracker()
    peer = nodes.peer(tracker, "p1", extra=["--heartbeat-interval", "60"])
    base = f"https://{tracker.info['address']}"
    assert call(peer, base + "/v1/leave")[0] == 200
    status, body = call(peer, base + "/v1/placement", body=b"{}")
    assert status == 503 and "no live peer" in body["error"]["message"]


def test_a_burst_of_placements_spreads_over_idle_peers(nodes: Nodes) -> None:
    tracker = nodes.tracker(extra=["--dead-after", "120"])
    # long heartbeat interval: all 30 requests fall inside one heartbeat window
    peers = [
        nodes.peer(tracker, f"p{i}", extra=["--heartbeat-interval", "60", "--slots", "2"])
        for i in range(3)
    ]
    url = f"https://{tracker.info['address']}/v1/placement"
    chosen = Counter(
        call(peers[0], url, body=b"{}")[1]["placements"][0]["peer_id"] for _ in range(30)
    )
    assert set(chosen) == {p.info["peer_id"] for p in peers}
    assert sorted(chosen.values()) == [10, 10, 10]


def test_peer_cluster_routes(pair: tuple[NodeProcess, NodeProcess]) -> None:
    _tracker, peer = pair
    base = f"https://{peer.info['address']}"
    status, body = call(peer, base + "/v1/ping", "GET")
    assert status == 200 and body["caller"] == peer.info["peer_id"]
    assert call(peer, base + "/v1/status", "GET")[1]["peer_id"] == peer.info["peer_id"]
    assert call(peer, base + "/v1/nope", "GET")[0] == 404


def test_local_api_errors(pair: tuple[NodeProcess, NodeProcess]) -> None:
    _tracker, peer = pair
    token = (peer.data_dir / "api.token").read_text().strip()

    async def go() -> list[tuple[int, str]]:
        out = []
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as s:
            for method, path in (
                ("GET", "/v1/nope"),
                ("POST", "/v1/status"),
                ("DELETE", "/v1/peers"),
            ):
                async with s.request(method, peer.info["api_url"] + path) as r:
                    out.append((r.status, (await r.json())["error"]["message"]))
        return out

    results = asyncio.run(go())
    assert [s for s, _ in results] == [404, 405, 405]
    assert "no such route: GET /v1/nope" in results[0][1]
