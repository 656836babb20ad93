"""Cluster-plane client: one pooled mutual-TLS session, timeouts on every call.

Errors come back as the exception the server raised (by code), and a node that cannot
be reached is an :class:`~peeros.errors.Unavailable` naming its address.
"""

from __future__ import annotations

import json
import ssl
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError

from peeros.errors import PeerOSError, Unavailable, from_wire
from peeros.protocol import PROTOCOL_HEADER, PROTOCOL_VERSION

M = TypeVar("M", bound=BaseModel)


async def raise_for_error(resp: aiohttp.ClientResponse) -> None:
    """Turn a JSON error body into the matching :class:`PeerOSError`."""
    if resp.status < 400:
        return
    text = await resp.text()
    code: str | None = None
    message = text.strip() or resp.reason or f"HTTP {resp.status}"
    try:
        body = json.loads(text)
        code = body["error"]["code"]
        message = body["error"]["message"]
    except (ValueError, KeyError, TypeError):
        pass
    raise from_wire(resp.status, code, message)


def parse(cls: type[M], data: Any, origin: str) -> M:
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise PeerOSError(f"{origin} sent an unexpected reply: {exc.errors()[0]['msg']}") from exc


class ClusterClient:
    """Calls other nodes' cluster-plane routes over mutual TLS."""

    def __init__(self, ssl_context: ssl.SSLContext, timeout: float = 10.0) -> None:
        self._ssl = ssl_context
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 5.0))
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=256),
                timeout=self._timeout,
                headers={PROTOCOL_HEADER: str(PROTOCOL_VERSION)},
            )
        return self._session

    async def request(
        self,
        address: str,
        method: str,
        path: str,
        body: BaseModel | None = None,
        response: type[M] | None = None,
        timeout: float | None = None,
    ) -> Any:
        url = f"https://{address}{path}"
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs["data"] = body.model_dump_json()
            kwargs["headers"] = {"Content-Type": "application/json"}
        if timeout is not None:
            kwargs["timeout"] = aiohttp.ClientTimeout(total=timeout)
        try:
            async with self._get_session().request(method, url, **kwargs) as resp:
                await raise_for_error(resp)
                data = await resp.json()
        except PeerOSError:
            raise
        except (TimeoutError, aiohttp.ClientError, ssl.SSLError, OSError) as exc:
            raise Unavailable(f"cannot reach {address}: {exc or type(exc).__name__}") from exc
        return parse(response, data, address) if response is not None else data

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
