"""The dashboard's token gate as plain ASGI: no sockets, no browser."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path
from typing import Any

from peeros.dashboard.auth import (
    TokenGate,
    cookie_name,
    cookie_value,
    load_or_create_token,
)

TOKEN = "s3cret-token"


async def inner(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def call(path: str = "/", query: str = "", headers: dict[str, str] | None = None) -> list[Any]:
    sent: list[Any] = []
    scope = {
        "type": "http",
        "path": path,
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "server": ("127.0.0.1", 5000),
    }

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(TokenGate(inner, TOKEN)(scope, receive, send))
    return sent


def test_no_token_is_401() -> None:
    assert call()[0]["status"] == 401
    assert call(query="token=wrong")[0]["status"] == 401
    assert call(headers={"Cookie": f"{cookie_name(5000)}=forged"})[0]["status"] == 401
    assert call(headers={"Authorization": "Bearer wrong"})[0]["status"] == 401


def test_the_token_sets_a_strict_httponly_cookie_that_then_suffices() -> None:
    start = call(query=f"token={TOKEN}")[0]
    assert start["status"] == 200
    (cookie,) = [v.decode() for k, v in start["headers"] if k == b"set-cookie"]
    assert cookie.startswith(f"{cookie_name(5000)}={cookie_value(TOKEN)};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    jar = {"Cookie": f"other=1; {cookie_name(5000)}={cookie_value(TOKEN)}"}
    assert call("/tasks", headers=jar)[0]["status"] == 200
    # a cookie for another dashboard port does not open this one
    other = {"Cookie": f"{cookie_name(5001)}={cookie_value(TOKEN)}"}
    assert call(headers=other)[0]["status"] == 401
    assert call(headers={"Authorization": f"Bearer {TOKEN}"})[0]["status"] == 200


def test_token_file_is_private_and_stable(tmp_path: Path) -> None:
    first = load_or_create_token(tmp_path)
    assert stat.S_IMODE((tmp_path / "dashboard.token").stat().st_mode) == 0o600
    assert load_or_create_token(tmp_path) == first and len(first) >= 32
