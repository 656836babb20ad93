"""``client.owned``: files this peer owns, encrypted by it and stored on other peers.

``client.owned.upload(path, name=None, replicas=2)``, ``.download(name, save_path)``,
``.delete(name)``, ``.list(refresh=False)``. Plaintext only travels between this client
and its own peer (the local API); the peer encrypts before anything leaves the machine
and verifies every byte it decrypts. Bodies stream in 1 MiB chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp

from peeros.client_files import IDLE_TIMEOUT, receive_verified
from peeros.errors import NotFound, PeerOSError, Unavailable
from peeros.files.local import check_filename_or_400
from peeros.files.transfer import Progress, send_file
from peeros.net.client import open_stream, parse
from peeros.protocol import FileInfo, OwnedDeleted, OwnedList, OwnedRecord

if TYPE_CHECKING:
    from peeros.client import AsyncClient


class AsyncOwned:
    """Owned files of the local peer, as coroutines."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    @staticmethod
    def _path(name: str | None = None) -> str:
        return "/v1/owned" if name is None else "/v1/owned/" + quote(name, safe="")

    def _stream(
        self, method: str, path: str, **kwargs: Any
    ) -> contextlib.AbstractAsyncContextManager[aiohttp.ClientResponse]:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10.0, sock_read=IDLE_TIMEOUT)
        url = self._client.endpoint.url + path
        origin = f"the peer's local API at {self._client.endpoint.url}"
        session = self._client._get_session()
        return open_stream(session, method, url, origin, timeout=timeout, **kwargs)

    async def upload(
        self,
        path: str | Path,
        name: str | None = None,
        replicas: int = 2,
        progress: Progress | None = None,
    ) -> OwnedRecord:
        """Encrypt the local file ``path`` and store it on ``replicas`` other peers."""
        source = Path(path)
        name = check_filename_or_400(name if name is not None else source.name)
        try:
            size = (await asyncio.to_thread(source.stat)).st_size
        except FileNotFoundError:
            raise NotFound(f"no local file {source}") from None

        failure: list[PeerOSError] = []
        body = send_file(source, size, progress, failure)
        headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
        target = f"{self._path(name)}?replicas={replicas}"
        try:
            async with self._stream("PUT", target, data=body, headers=headers) as resp:
                data = await resp.json()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            if failure:
                raise failure[0] from exc
            raise Unavailable(f"upload of {name!r} failed: {exc!r}") from exc
        return parse(OwnedRecord, data, self._client.endpoint.url)

    async def download(
        self, name: str, save_path: str | Path, progress: Progress | None = None
    ) -> FileInfo:
        """Fetch, verify and decrypt ``name`` into ``save_path`` (a directory: under
        ``name``); the file appears only once complete and authentic."""
        check_filename_or_400(name)
        dest = Path(save_path)
        if await asyncio.to_thread(dest.is_dir):
            dest = dest / name
        async with self._stream("GET", self._path(name)) as resp:
            size, digest = await receive_verified(resp, dest, name, "the peer", progress)
        return FileInfo(name=name, size=size, sha256=digest, modified=0.0, peer_id="")

    async def delete(self, name: str) -> OwnedDeleted:
        """Remove ``name`` from every holder and from the tracker's registry."""
        check_filename_or_400(name)
        data = await self._client.request("DELETE", self._path(name))
        return parse(OwnedDeleted, data, self._client.endpoint.url)

    async def list(self, refresh: bool = False) -> list[OwnedRecord]:
        """This peer's owned files; ``refresh`` rebuilds the list from the tracker."""
        path = self._path() + ("?refresh=1" if refresh else "")
        data = await self._client.request("GET", path)
        return parse(OwnedList, data, self._client.endpoint.url).files


class Owned:
    """The blocking face of :class:`AsyncOwned` (``Client.owned``)."""

    def __init__(self, inner: AsyncOwned, run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
        self._inner = inner
        self._run = run

    def upload(
        self,
        path: str | Path,
        name: str | None = None,
        replicas: int = 2,
        progress: Progress | None = None,
    ) -> OwnedRecord:
        result: OwnedRecord = self._run(self._inner.upload(path, name, replicas, progress))
        return result

    def download(
        self, name: str, save_path: str | Path, progress: Progress | None = None
    ) -> FileInfo:
        result: FileInfo = self._run(self._inner.download(name, save_path, progress))
        return result

    def delete(self, name: str) -> OwnedDeleted:
        result: OwnedDeleted = self._run(self._inner.delete(name))
        return result

    def list(self, refresh: bool = False) -> list[OwnedRecord]:
        result: list[OwnedRecord] = self._run(self._inner.list(refresh))
        return result
