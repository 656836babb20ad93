"""``client.files``: store, fetch, list and delete files on a peer, streamed.

``client.files.put("name", "local/path")``, ``.get("name", "save/path")``, ``.list()``,
``.delete("name")``; ``client.files.on(peer)`` (a peer id or HOST:PORT) does the same on
another peer, relayed by the local one. Bodies are raw bytes in 1 MiB chunks, so memory
stays constant for any size. SHA-256 is checked end to end: ``put`` hashes the file
first and the peer refuses bytes that do not match; ``get`` verifies what it received
against the peer's hash before the file appears at the save path (temp file + rename).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import aiohttp

from peeros.client_fetch import fetch, fetch_batch
from peeros.client_http import BlockingHTTP
from peeros.errors import BadRequest, PeerOSError, Unavailable
from peeros.files.local import check_filename_or_400
from peeros.files.saving import PendingSave, SaveFile
from peeros.files.transfer import CHUNK, Progress, hash_file, send_file
from peeros.net.client import open_stream, parse
from peeros.protocol import (
    MODIFIED_HEADER,
    PEER_HEADER,
    SHA256_HEADER,
    FileDeleted,
    FileInfo,
    FileList,
)

if TYPE_CHECKING:
    from peeros.client import AsyncClient

T = TypeVar("T")

#: Longest silence tolerated mid-transfer (the peer fsyncs big files before answering).
IDLE_TIMEOUT = 300.0
#: Bodies up to this size are read whole and saved without thread hand-offs.
SMALL_BODY = 64 << 10


async def receive_verified(
    resp: aiohttp.ClientResponse,
    dest: Path,
    name: str,
    origin: str,
    progress: Progress | None = None,
    pending: PendingSave | None = None,
) -> tuple[int, str]:
    """Stream a response body into ``dest`` atomically, checking the SHA-256 the sender
    announced; returns ``(size, digest)``. Nothing appears at ``dest`` unless it matches.

    ``pending``: the save of ``dest``, started before the request was sent.
    """
    expected = resp.headers.get(SHA256_HEADER)
    if not expected:
        raise PeerOSError(f"{origin} sent {name!r} without its SHA-256")
    if pending is None:
        pending = PendingSave(dest)
    try:
        return await _receive(resp, await pending.writer(), name, expected, progress)
    finally:
        await pending.discard()


async def _receive(
    resp: aiohttp.ClientResponse,
    writer: SaveFile,
    name: str,
    expected: str,
    progress: Progress | None,
) -> tuple[int, str]:
    total = resp.content_length if resp.content_length is not None else -1
    if 0 <= total <= SMALL_BODY:
        return await _receive_small(resp, writer, name, expected, progress)
    received = 0

    def on_chunk(n: int) -> None:
        nonlocal received
        received += n
        if progress is not None:
            progress("receiving", received, total)

    with writer:
        writer.expect(total)
        try:
            await writer.write_all(resp.content.iter_chunked(CHUNK), on_chunk)
            digest = await asyncio.to_thread(writer.commit, expected)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unavailable(f"download of {name!r} was cut off: {exc!r}") from exc
    return writer.size, digest


async def _receive_small(
    resp: aiohttp.ClientResponse,
    writer: SaveFile,
    name: str,
    expected: str,
    progress: Progress | None,
) -> tuple[int, str]:
    """:func:`receive_verified` for a small body: read whole, then hashed, written and
    renamed right here. A few page-cache writes cost less than the thread hand-offs of
    the streaming path, which dominate when the file is small."""
    with writer:
        try:
            data = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unavailable(f"download of {name!r} was cut off: {exc!r}") from exc
        writer.write(data)
        digest = writer.commit(expected)
    if progress is not None:
        progress("receiving", len(data), len(data))
    return len(data), digest


class AsyncFiles:
    """Files on one peer (the local one, or ``on``), as coroutines."""

    def __init__(self, client: AsyncClient, on: str | None = None) -> None:
        self._client = client
        self._on = on

    def on(self, peer: str) -> AsyncFiles:
        """The files of another peer (peer id or HOST:PORT), through the local peer."""
        return AsyncFiles(self._client, peer)

    def _path(self, name: str | None = None) -> str:
        path = "/v1/files" if name is None else "/v1/files/" + quote(name, safe="")
        return path + (f"?on={quote(self._on, safe='')}" if self._on else "")

    def _stream(
        self, method: str, name: str, **kwargs: Any
    ) -> contextlib.AbstractAsyncContextManager[aiohttp.ClientResponse]:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10.0, sock_read=IDLE_TIMEOUT)
        url = self._client.endpoint.url + self._path(name)
        session = self._client._get_session()
        return open_stream(
            session, method, url, self._origin, timeout=timeout, read_bufsize=CHUNK, **kwargs
        )

    @property
    def _origin(self) -> str:
        return f"the peer's local API at {self._client.endpoint.url}"

    async def put(self, name: str, path: str | Path, progress: Progress | None = None) -> FileInfo:
        """Store the local file ``path`` as ``name``; returns what the peer stored."""
        check_filename_or_400(name)
        source = Path(path)
        digest, size = await hash_file(source, progress)
        failure: list[PeerOSError] = []
        body = send_file(source, size, progress, failure)
        headers = {
            SHA256_HEADER: digest,
            "Content-Length": str(size),
            "Content-Type": "application/octet-stream",
        }
        try:
            async with self._stream("PUT", name, data=body, headers=headers) as resp:
                data = await resp.json()
        except (PeerOSError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            if failure:
                raise failure[0] from exc
            if isinstance(exc, PeerOSError):
                raise
            raise Unavailable(f"upload of {name!r} failed: {exc!r}") from exc
        info = parse(FileInfo, data, self._client.endpoint.url)
        if info.sha256 != digest or info.size != size:
            raise PeerOSError(f"the peer stored {name!r} with another hash or size than sent")
        return info

    async def get(
        self, name: str, save_path: str | Path, progress: Progress | None = None
    ) -> FileInfo:
        """Fetch ``name`` into ``save_path`` (a directory: saved there under ``name``).

        The file appears at the save path only once complete and verified.
        """
        check_filename_or_400(name)
        dest = Path(save_path)
        if dest.is_dir():  # noqa: ASYNC240 - one stat costs less than a thread hand-off
            dest = dest / name
        pending = PendingSave(dest)
        try:
            async with self._stream("GET", name) as resp:
                size, digest = await receive_verified(
                    resp, dest, name, self._origin, progress, pending
                )
                return FileInfo(
                    name=name,
                    size=size,
                    sha256=digest,
                    modified=float(resp.headers.get(MODIFIED_HEADER, "0") or 0),
                    peer_id=resp.headers.get(PEER_HEADER, ""),
                )
        finally:
            await pending.discard()

    async def get_many(self, names: Sequence[str], save_dir: str | Path) -> list[FileInfo]:
        """Fetch every file of ``names`` into the directory ``save_dir``, many per request;
        all are verified before any appears, and if one fails none is saved.

        Runs :func:`peeros.client_fetch.fetch_batch` in a thread, on a blocking connection
        of its own (closed on return).
        """
        route, items = self._batch(names, save_dir)
        endpoint = self._client.endpoint
        api = BlockingHTTP(endpoint.url, endpoint.token, IDLE_TIMEOUT)
        try:
            return await asyncio.to_thread(fetch_batch, api, route, items, IDLE_TIMEOUT)
        finally:
            api.close()

    def _batch(
        self, names: Sequence[str], save_dir: str | Path
    ) -> tuple[str, list[tuple[str, Path]]]:
        """The batch route and ``(name, destination)`` of each name, all checked first."""
        if isinstance(names, str):
            raise BadRequest("names must be a list of file names, not one string")
        if not names:
            raise BadRequest("no file names given")
        for name in names:
            check_filename_or_400(name)
        repeated = sorted(n for n, count in collections.Counter(names).items() if count > 1)
        if repeated:
            raise BadRequest(f"file names given more than once: {', '.join(repeated)}")
        directory = Path(save_dir)
        if not directory.is_dir():
            raise BadRequest(f"{directory} is not a directory: several files are saved into one")
        route = "/v1/files-batch" + (f"?on={quote(self._on, safe='')}" if self._on else "")
        return route, [(name, directory / name) for name in names]

    async def list(self) -> list[FileInfo]:
        data = await self._client.request("GET", self._path())
        return parse(FileList, data, self._client.endpoint.url).files

    async def delete(self, name: str) -> FileDeleted:
        check_filename_or_400(name)
        data = await self._client.request("DELETE", self._path(name))
        return parse(FileDeleted, data, self._client.endpoint.url)


class Files:
    """The blocking face of :class:`AsyncFiles` (``Client.files``).

    With ``http`` (the :class:`~peeros.client.Client`'s own connections), ``get`` runs on
    the caller's thread (:mod:`peeros.client_fetch`); the rest goes through ``run``.
    """

    def __init__(
        self,
        inner: AsyncFiles,
        run: Callable[[Coroutine[Any, Any, Any]], Any],
        http: BlockingHTTP | None = None,
    ) -> None:
        self._inner = inner
        self._run = run
        self._http = http

    def on(self, peer: str) -> Files:
        """The files of another peer (peer id or HOST:PORT), through the local peer."""
        return Files(self._inner.on(peer), self._run, self._http)

    def put(self, name: str, path: str | Path, progress: Progress | None = None) -> FileInfo:
        result: FileInfo = self._run(self._inner.put(name, path, progress))
        return result

    def get(self, name: str, save_path: str | Path, progress: Progress | None = None) -> FileInfo:
        """Fetch ``name`` into ``save_path`` (a directory: saved there under ``name``).

        The file appears at the save path only once complete and verified. ``progress``
        is called on the caller's thread.
        """
        if self._http is None:
            result: FileInfo = self._run(self._inner.get(name, save_path, progress))
            return result
        check_filename_or_400(name)
        dest = Path(save_path)
        if dest.is_dir():
            dest = dest / name
        return fetch(self._http, self._inner._path(name), name, dest, IDLE_TIMEOUT, progress)

    def get_many(self, names: Sequence[str], save_dir: str | Path) -> list[FileInfo]:
        """Fetch every file of ``names`` into the directory ``save_dir``, each saved under
        its name, many per request (``POST /v1/files-batch``); all are verified before any
        appears, and if one fails (missing, cut off, wrong hash) none is saved. Returns
        what was saved, in the order given."""
        if self._http is None:
            result: list[FileInfo] = self._run(self._inner.get_many(names, save_dir))
            return result
        return fetch_batch(self._http, *self._inner._batch(names, save_dir), IDLE_TIMEOUT)

    def list(self) -> list[FileInfo]:
        result: list[FileInfo] = self._run(self._inner.list())
        return result

    def delete(self, name: str) -> FileDeleted:
        result: FileDeleted = self._run(self._inner.delete(name))
        return result
