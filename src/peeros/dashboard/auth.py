"""The dashboard's gate: a token like Jupyter's, then an HttpOnly cookie.

The login URL carries ``?token=T``. A request with the right token gets the page and a
cookie (``HttpOnly; SameSite=Strict``; its value is an HMAC of the token, not the token).
Every later request, including NiceGUI's assets, uploads and its socket.io channel, must
bring that cookie (or ``Authorization: Bearer T``); anything else gets ``401``. The gate
is plain ASGI middleware around the whole application, so no route can be forgotten.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from peeros.fsutil import write_private

TOKEN_FILE = "dashboard.token"
INFO_FILE = "dashboard.json"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNAUTHORIZED_TEXT = (
    b"401 Unauthorized: open the dashboard with the URL it printed "
    b"(http://HOST:PORT/?token=...); the token is in dashboard.token in its data directory.\n"
)


def load_or_create_token(data_dir: Path) -> str:
    """The dashboard token of ``data_dir``, created (0600) on first use."""
    path = data_dir / TOKEN_FILE
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    token = secrets.token_urlsafe(32)
    write_private(path, (token + "\n").encode())
    return token


def cookie_name(port: int) -> str:
    """Cookies ignore ports: two dashboards on one host need two names."""
    return f"peeros_dashboard_{port}"


def cookie_value(token: str) -> str:
    return hmac.new(token.encode(), b"peeros-dashboard-cookie", hashlib.sha256).hexdigest()


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


class TokenGate:
    """ASGI middleware: lets a request through only with the token or its cookie."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token
        self._cookie = cookie_value(token)

    def _cookie_ok(self, headers: dict[str, str], port: int) -> bool:
        raw = headers.get("cookie")
        if not raw:
            return False
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except CookieError:
            return False
        morsel = jar.get(cookie_name(port))
        return morsel is not None and hmac.compare_digest(morsel.value, self._cookie)

    def _bearer_ok(self, headers: dict[str, str]) -> bool:
        auth = headers.get("authorization", "")
        scheme, _, offered = auth.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(offered.strip(), self._token)

    def _query_ok(self, scope: Scope) -> bool:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        return any(hmac.compare_digest(t, self._token) for t in query.get("token", []))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        server = scope.get("server") or ("", 0)
        port = int(server[1] or 0)
        if self._cookie_ok(headers, port) or self._bearer_ok(headers):
            await self.app(scope, receive, send)
            return
        if self._query_ok(scope):
            if scope["type"] == "websocket":
                await self.app(scope, receive, send)
                return
            set_cookie = (
                f"{cookie_name(port)}={self._cookie}; Path=/; HttpOnly; SameSite=Strict"
            ).encode("latin-1")

            async def send_with_cookie(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", []), (b"set-cookie", set_cookie)]
                await send(message)

            await self.app(scope, receive, send_with_cookie)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(UNAUTHORIZED_TEXT)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": UNAUTHORIZED_TEXT})
