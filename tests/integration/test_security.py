"""Security: mutual TLS everywhere on the cluster plane, tokens on the user plane."""

from __future__ import annotations

import asyncio
import socket
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from peeros.errors import Forbidden, Unavailable
from peeros.protocol import PeerList
from peeros.security import identity, pki
from tests.conftest import Nodes, enrollment_client, member_client, token_of


def split(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


def handshake(address: str, ctx: ssl.SSLContext) -> bytes:
    """Complete a TLS handshake and one request; return what the server sent."""
    with socket.create_connection(split(address), timeout=5) as raw, ctx.wrap_socket(raw) as tls:
        tls.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return tls.recv(1024)


def refused(address: str, ctx: ssl.SSLContext) -> bool:
    """True when the server ends the connection without ever answering the request.

    With TLS 1.3 the client may consider its side of the handshake done before the
    server has checked the client certificate; the server then aborts the connection
    (an alert, a reset, or a bare close), and no HTTP reply ever arrives.
    """
    try:
        return handshake(address, ctx) == b""
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return True


def anonymous_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def foreign_context(tmp: Path) -> ssl.SSLContext:
    """A node with a certificate from another cluster's CA."""
    other_ca = pki.load_or_create_ca(tmp / "other-ca")
    me = identity.load_or_create(tmp / "intruder")
    cert = other_ca.issue(me.public_key, me.peer_id)
    (tmp / "intruder" / "node.crt").write_text(pki.cert_pem(cert))
    ctx = anonymous_context()
    ctx.load_cert_chain(tmp / "intruder" / "node.crt", tmp / "intruder" / "node.key")
    return ctx


@pytest.mark.parametrize("target", ["tracker", "peer"])
def test_no_client_certificate_means_no_handshake(nodes: Nodes, target: str) -> None:
    tracker = nodes.tracker()
    peer = nodes.peer(tracker, "p1")
    address = tracker.info["address"] if target == "tracker" else peer.info["address"]
    assert refused(address, anonymous_context())


@pytest.mark.parametrize("target", ["tracker", "peer"])
def test_a_certificate_from_another_ca_is_refused(
    nodes: Nodes, tmp_path: Path, target: str
) -> None:
    tracker = nodes.tracker()
    peer = nodes.peer(tracker, "p1")
    address = tracker.info["address"] if target == "tracker" else peer.info["address"]
    assert refused(address, foreign_context(tmp_path))


def test_a_member_certificate_completes_the_handshake(nodes: Nodes) -> None:
    tracker = nodes.tracker()
    peer = nodes.peer(tracker, "p1")
    creds = pki.Credentials.from_dir(peer.data_dir)
    reply = handshake(tracker.info["address"], pki.client_context(creds))
    assert reply.startswith(b"HTTP/1.1 200")


def test_wrong_join_token_is_refused_with_403_and_no_certificate(
    nodes: Nodes, tmp_path: Path
) -> None:
    tracker = nodes.tracker()
    good = pki.JoinToken.parse(token_of(tracker))
    bad = str(pki.JoinToken(good.ca_fingerprint, "x" * 32))
    data_dir = tmp_path / "wannabe"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "peeros",
            "peer",
            "--tracker",
            tracker.info["address"],
            "--join",
            bad,
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == "error: wrong join token"
    assert "Traceback" not in proc.stderr
    assert not (data_dir / pki.NODE_CERT_FILE).exists()


def test_a_token_for_another_ca_makes_the_peer_refuse_the_tracker(
    nodes: Nodes, tmp_path: Path
) -> None:
    tracker = nodes.tracker()
    good = pki.JoinToken.parse(token_of(tracker))
    impostor_pin = str(pki.JoinToken("0" * 64, good.secret))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "peeros",
            "peer",
            "--tracker",
            tracker.info["address"],
            "--join",
            impostor_pin,
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "cautious"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert "error:" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "cautious" / pki.NODE_CERT_FILE).exists()


def test_enrollment_certificates_reach_only_enrollment_routes(nodes: Nodes, tmp_path: Path) -> None:
    tracker = nodes.tracker()

    async def go() -> None:
        client = enrollment_client(tracker, tmp_path / "enrolling")
        try:
            ca = await client.request(tracker.info["address"], "GET", "/v1/ca")
            assert "BEGIN CERTIFICATE" in ca["ca_pem"]
            with pytest.raises(Forbidden, match="only cluster members"):
                await client.request(tracker.info["address"], "GET", "/v1/peers", response=PeerList)
        finally:
            await client.close()

    asyncio.run(go())


def test_local_api_requires_the_token(nodes: Nodes) -> None:
    tracker = nodes.tracker()
    peer = nodes.peer(tracker, "p1")
    url = peer.info["api_url"] + "/v1/status"

    async def go() -> list[tuple[int, str]]:
        out = []
        async with aiohttp.ClientSession() as s:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
                async with s.get(url, headers=headers) as r:
                    out.append((r.status, (await r.json())["error"]["message"]))
            token = (peer.data_dir / "api.token").read_text().strip()
            async with s.get(url, headers={"Authorization": f"Bearer {token}"}) as r:
                out.append((r.status, ""))
        return out

    results = asyncio.run(go())
    assert [s for s, _ in results] == [401, 401, 401, 200]
    assert "missing API token" in results[0][1]
    assert results[1][1] == "wrong API token"


def test_local_api_listens_on_loopback_only(nodes: Nodes) -> None:
    tracker = nodes.tracker()
    peer = nodes.peer(tracker, "p1")
    assert peer.info["api_url"].startswith("http://127.0.0.1:")


def test_secrets_are_owner_only_files(nodes: Nodes) -> None:
    tracker = nodes.tracker()
    peer = nodes.peer(tracker, "p1")
    secrets = [
        tracker.data_dir / "ca.key",
        tracker.data_dir / "node.key",
        tracker.data_dir / "join-token",
        peer.data_dir / "node.key",
        peer.data_dir / "api.token",
    ]
    for path in secrets:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for directory in (tracker.data_dir, peer.data_dir):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_a_stopped_peer_is_unavailable_not_a_crash(nodes: Nodes) -> None:
    tracker = nodes.tracker()
    peer = nodes.peer(tracker, "p1")

    async def go() -> None:
        client = member_client(peer.data_dir, timeout=2)
        try:
            with pytest.raises(Unavailable, match=r"cannot reach 127\.0\.0\.1:1"):
                await client.request("127.0.0.1:1", "GET", "/v1/ping")
        finally:
            await client.close()

    asyncio.run(go())
