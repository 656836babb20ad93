"""``peeros.Client``: the one client of a peer's local API, used by the CLI, the
dashboard and user code alike.

:class:`AsyncClient` does the work on aiohttp. :class:`Client` is its synchronous face:
it runs an event loop in a private thread (as Dask's client does), so it is safe to use
from plain scripts, notebooks and threads.

Finding the peer: an explicit URL and token, else a data directory (the running peer
wrote ``api.json`` and ``api.token`` there; a ``peeros up`` cluster directory works too),
else ``$PEEROS_DATA_DIR``, else ``~/.peeros``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from peeros.config import default_data_dir
from peeros.errors import BadRequest, PeerOSError, Unavailable
from peeros.net.client import parse, raise_for_error
from peeros.protocol import PROTOCOL_HEADER, PROTOCOL_VERSION, PeerInfo, PeerList, PeerStatus

T = TypeVar("T")


@dataclass(frozen=True)
class Endpoint:
    url: str
    token: str


def _normalise_url(peer: str) -> str:
    url = peer if "://" in peer else f"http://{peer}"
    return url.rstrip("/")


def resolve_endpoint(
    peer: str | None = None, token: str | None = None, data_dir: str | Path | None = None
) -> Endpoint:
    """Where the local API is and its token, by the documented order of precedence."""
    if peer:
        if not token:
            raise BadRequest("--token is required with --peer (or use --data-dir)")
        return Endpoint(_normalise_url(peer), token)
    directory = Path(data_dir) if data_dir else default_data_dir()
    info_path = directory / "api.json"
    if not info_path.exists() and (directory / "cluster.json").exists():
        # A ``peeros up`` directory: talk to its first peer.
        cluster = json.loads((directory / "cluster.json").read_text())
        if cluster.get("peers"):
            directory = Path(cluster["peers"][0]["data_dir"])
            info_path = directory / "api.json"
    if not info_path.exists():
        raise Unavailable(
            f"no running peer found in {directory} (no api.json); start one with "
            "'peeros peer' or 'peeros up', or pass --peer URL --token T"
        )
    try:
        info = json.loads(info_path.read_text())
        url = info["api_url"]
        secret = token or (directory / "api.token").read_text().strip()
    except (OSError, ValueError, KeyError) as exc:
        raise Unavailable(f"cannot read the peer's address or token in {directory}: {exc}") from exc
    return Endpoint(_normalise_url(url), secret)


class AsyncClient:
    """Asynchronous client of one peer's local API."""

    def __init__(
        self,
        peer: str | None = None,
        token: str | None = None,
        data_dir: str | Path | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.endpoint = resolve_endpoint(peer, token, data_dir)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                headers={
                    "Authorization": f"Bearer {self.endpoint.token}",
                    PROTOCOL_HEADER: str(PROTOCOL_VERSION),
                },
            )
        return self._session

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        url = self.endpoint.url + path
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs["json"] = body
        try:
            async with self._get_session().request(method, url, **kwargs) as resp:
                await raise_for_error(resp)
                return await resp.json()
        except PeerOSError:
            raise
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise Unavailable(
                f"cannot reach the peer's local API at {self.endpoint.url}: "
                f"{exc or type(exc).__name__}; is the peer running?"
            ) from exc

    async def status(self) -> PeerStatus:
        return parse(PeerStatus, await self.request("GET", "/v1/status"), self.endpoint.url)

    async def peers(self) -> list[PeerInfo]:
        return parse(PeerList, await self.request("GET", "/v1/peers"), self.endpoint.url).peers

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class Client:
    """Synchronous client: the same operations as :class:`AsyncClient`, blocking."""

    def __init__(
        self,
        peer: str | None = None,
        token: str | None = None,
        data_dir: str | Path | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._async = AsyncClient(peer, token, data_dir, timeout)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="peeros-client", daemon=True
        )
        self._thread.start()

    @property
    def endpoint(self) -> Endpoint:
        return self._async.endpoint

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def status(self) -> PeerStatus:
        return self._run(self._async.status())

    def peers(self) -> list[PeerInfo]:
        return self._run(self._async.peers())

    def close(self) -> None:
        if self._loop.is_running():
            self._run(self._async.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(
    peer: str | None = None, token: str | None = None, data_dir: str | Path | None = None
) -> Client:
    """Connect to a peer's local API (see the module docstring for how it is found)."""
    return Client(peer, token, data_dir)
