"""The owner's side of owned files: encrypt, spread, fetch, verify, delete, list.

Only this peer's identity can read or remove its owned files (SPEC §5):

* upload: the tracker picks distinct live holders; a random file key encrypts the
  stream (:class:`~peeros.files.crypto.Encryptor`) once, and that blob -- the file key
  wrapped under the owner key, then the ciphertext -- is streamed to every holder at
  once as it is encrypted (:mod:`peeros.peer.owned_spread`), in constant memory. Only
  when all hold it is the file recorded on the tracker and in ``owned.json``. A
  failure removes the copies already made.
* download: the tracker locates the holders (signed request); each holder is tried in
  turn (live ones first) with a signed request; the blob is unwrapped and decrypted
  chunk by chunk into a temp file. A copy that fails authentication is reported as bad
  and the next replica used: tampered bytes are never returned.
* delete: the tracker forgets the file (signed), then every holder drops its copy.
* list: ``owned.json`` (name, size, holders, created, wrapped key), rebuilt from the
  tracker when missing or on request -- the owner key is derived from ``node.key``, so
  nothing else needs to survive.

The file id bound into every AEAD tag is ``<owner id>/<name>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal
from urllib.parse import quote

import aiohttp

from peeros.errors import NotFound, PeerOSError, Unavailable
from peeros.files.crypto import (
    WRAPPED_KEY_SIZE,
    DecryptionError,
    Decryptor,
    Encryptor,
    ciphertext_size,
    derive_owner_key,
    new_file_key,
    unwrap_key,
    wrap_key,
)
from peeros.files.local import check_filename_or_400
from peeros.files.transfer import CHUNK, write_stream
from peeros.fsutil import read_json, write_json
from peeros.net.client import parse
from peeros.peer.owned_spread import spread
from peeros.protocol import (
    OWNER_AUTH_HEADER,
    OwnedAllocate,
    OwnedBadCopy,
    OwnedCommit,
    OwnedDeleted,
    OwnedHolder,
    OwnedHolders,
    OwnedList,
    OwnedRecord,
    OwnedSigned,
    OwnedStored,
    OwnerAuth,
)
from peeros.security import owner_auth

if TYPE_CHECKING:
    from peeros.peer.node import PeerNode

log = logging.getLogger(__name__)

__all__ = ["INDEX_FILE", "OwnedService", "holder_path"]

INDEX_FILE = "owned.json"
INDEX_VERSION = 1
_LINK_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)


def holder_path(owner_id: str, name: str) -> str:
    """The cluster-plane route of one blob on a holder."""
    return f"/v1/owned/{owner_id}/{quote(name, safe='')}"


class _DecryptingSink:
    """``wrapped key | ciphertext`` in, verified plaintext out to ``fobj``, hashed."""

    def __init__(self, fobj: BinaryIO, owner_key: bytes, file_id: str) -> None:
        self.fobj = fobj
        self.owner_key = owner_key
        self.file_id = file_id
        self.head = bytearray()
        self.dec: Decryptor | None = None
        self.hash = hashlib.sha256()
        self.size = 0

    def _out(self, plain: bytes) -> None:
        self.fobj.write(plain)
        self.hash.update(plain)
        self.size += len(plain)

    def write(self, data: bytes) -> None:
        if self.dec is None:
            self.head += data
            if len(self.head) < WRAPPED_KEY_SIZE:
                return
            key = unwrap_key(self.owner_key, bytes(self.head[:WRAPPED_KEY_SIZE]), self.file_id)
            self.dec = Decryptor(key, self.file_id)
            data = bytes(self.head[WRAPPED_KEY_SIZE:])
            self.head.clear()
        self._out(self.dec.update(data))

    def finish(self) -> None:
        if self.dec is None:
            raise DecryptionError("stream truncated: incomplete wrapped key")
        self._out(self.dec.finalize())
        self.fobj.flush()


class OwnedService:
    """Owned files of this peer, as their owner."""

    def __init__(self, node: PeerNode) -> None:
        self.node = node
        self.index_path = node.data_dir / INDEX_FILE
        self.tmp_dir = node.data_dir / "owned-tmp"
        self.tmp_dir.mkdir(mode=0o700, exist_ok=True)
        for stale in self.tmp_dir.iterdir():  # left by a crash mid-transfer
            stale.unlink(missing_ok=True)
        self._owner_key = derive_owner_key(node.ident.secret_bytes())

    # --- helpers -----------------------------------------------------------------------

    @property
    def owner_id(self) -> str:
        return self.node.peer_id

    def file_id(self, name: str) -> str:
        return f"{self.owner_id}/{name}"

    def _tracker(self) -> str:
        if not self.node.settings.tracker or self.node.client is None:
            raise Unavailable("owned files need a tracker; this peer runs without one")
        return self.node.settings.tracker

    def _signed(self, op: Literal["download", "delete"], name: str) -> OwnerAuth:
        return owner_auth.sign(self.node.ident, op, name, time.time())

    def _temp(self) -> Path:
        fd, path = tempfile.mkstemp(prefix="owned-", dir=self.tmp_dir)
        os.close(fd)
        return Path(path)

    async def _call(self, method: str, path: str, body: Any = None, response: Any = None) -> Any:
        assert self.node.client is not None
        return await self.node.client.request(self._tracker(), method, path, body, response)

    # --- the local index ---------------------------------------------------------------

    def _read_index(self) -> dict[str, dict[str, Any]] | None:
        try:
            data = read_json(self.index_path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", self.index_path, exc)
            return None
        if not isinstance(data, dict) or data.get("version") != INDEX_VERSION:
            return None
        files = data.get("files")
        return files if isinstance(files, dict) else None

    def _write_index(self, files: dict[str, dict[str, Any]]) -> None:
        write_json(self.index_path, {"version": INDEX_VERSION, "files": files}, 0o600)

    def _remember(self, rec: OwnedRecord, wrapped: bytes | None) -> None:
        files = self._read_index() or {}
        entry = rec.model_dump()
        if wrapped is not None:
            entry["wrapped_key"] = wrapped.hex()
        files[rec.name] = entry
        self._write_index(files)

    def _forget(self, name: str) -> None:
        files = self._read_index()
        if files is not None and files.pop(name, None) is not None:
            self._write_index(files)

    # --- upload --------------------------------------------------------------------------

    async def upload(
        self, name: str, replicas: int, size: int, body: AsyncIterable[bytes]
    ) -> OwnedRecord:
        """Encrypt ``size`` plaintext bytes from ``body`` and store them on ``replicas``
        holders; recorded on the tracker only once every holder has its copy."""
        check_filename_or_400(name)
        stored = WRAPPED_KEY_SIZE + ciphertext_size(size)
        req = OwnedAllocate(name=name, replicas=replicas, stored_size=stored)
        holders: OwnedHolders = await self._call("POST", "/v1/owned/allocate", req, OwnedHolders)
        file_key, file_id = new_file_key(), self.file_id(name)
        wrapped = wrap_key(self._owner_key, file_key, file_id)
        enc = Encryptor(file_key, file_id)
        uploads = [functools.partial(self._put, h, name, stored=stored) for h in holders.holders]
        outcome = await spread(name, body, size, wrapped + enc.header(), enc, uploads)
        if outcome.error is not None:
            done = [h for h, ok in zip(holders.holders, outcome.done, strict=True) if ok]
            await self._drop_copies(name, done)
            if isinstance(outcome.error, PeerOSError):
                raise outcome.error
            raise Unavailable(f"storing {name!r} failed: {outcome.error!r}") from outcome.error
        commit = OwnedCommit(
            name=name,
            size=size,
            stored_size=stored,
            holders=[h.peer_id for h in holders.holders],
            created=time.time(),
        )
        rec: OwnedRecord = await self._call("POST", "/v1/owned/commit", commit, OwnedRecord)
        await asyncio.to_thread(self._remember, rec, wrapped)
        log.info("owned file %r stored on %s", name, ", ".join(commit.holders))
        return rec

    async def _put(
        self, holder: OwnedHolder, name: str, blob: AsyncIterator[bytes], stored: int
    ) -> bool:
        assert self.node.client is not None
        headers = {"Content-Length": str(stored), "Content-Type": "application/octet-stream"}
        path = holder_path(self.owner_id, name)
        stream = self.node.client.stream(holder.address, "PUT", path, data=blob, headers=headers)
        try:
            async with stream as resp:
                receipt = parse(OwnedStored, await resp.json(), holder.address)
        except _LINK_ERRORS as exc:
            raise Unavailable(f"holder {holder.peer_id} failed while storing: {exc!r}") from exc
        if receipt.stored_size != stored:
            raise PeerOSError(f"holder {holder.peer_id} stored {receipt.stored_size} bytes")
        return True

    # --- download ------------------------------------------------------------------------

    async def locate(self, name: str) -> OwnedRecord:
        """Where ``name`` is held: asked of the tracker (signed), else the local index."""
        check_filename_or_400(name)
        try:
            req = OwnedSigned(auth=self._signed("download", name))
            rec: OwnedRecord = await self._call("POST", "/v1/owned/locate", req, OwnedRecord)
            return rec
        except Unavailable:
            entry = (self._read_index() or {}).get(name)
            if entry is None:
                raise
            log.warning("tracker unreachable; using the local record of %r", name)
            return OwnedRecord.model_validate(
                {k: v for k, v in entry.items() if k != "wrapped_key"}
            )

    async def download(self, name: str) -> tuple[Path, int, str]:
        """Fetch and verify ``name`` into a temp file: (path, size, SHA-256); the caller
        removes the file. Holders are tried in turn; bad copies are skipped."""
        rec = await self.locate(name)
        problems: list[str] = []
        bad: list[OwnedHolder] = []
        for holder in sorted(rec.holders, key=lambda h: not h.alive):
            tmp = await asyncio.to_thread(self._temp)
            try:
                size, digest = await self._fetch(holder, name, tmp)
            except DecryptionError as exc:
                bad.append(holder)
                log.error("copy of %r on %s is bad (%s); trying another", name, holder.peer_id, exc)
                problems.append(f"{holder.peer_id}: tampered copy ({exc})")
            except (PeerOSError, *_LINK_ERRORS) as exc:
                log.warning("cannot fetch %r from %s: %s", name, holder.peer_id, exc)
                problems.append(f"{holder.peer_id}: {getattr(exc, 'message', exc)!s}")
            else:
                if bad:
                    await self._report_bad(name, bad)
                return tmp, size, digest
            tmp.unlink(missing_ok=True)
        summary = "; ".join(problems) or "no holders recorded"
        if bad:
            raise PeerOSError(f"no authentic copy of {name!r} could be fetched: {summary}")
        raise Unavailable(f"no holder of {name!r} could serve it: {summary}")

    async def _report_bad(self, name: str, bad: list[OwnedHolder]) -> None:
        """A good copy exists: drop the bad ones and tell the tracker, which re-replicates."""
        await self._drop_copies(name, bad)
        for holder in bad:
            req = OwnedBadCopy(name=name, holder=holder.peer_id)
            with contextlib.suppress(PeerOSError):
                await self._call("POST", "/v1/owned/bad", req, OwnedRecord)

    async def _fetch(self, holder: OwnedHolder, name: str, dest: Path) -> tuple[int, str]:
        assert self.node.client is not None
        headers = {OWNER_AUTH_HEADER: self._signed("download", name).model_dump_json()}
        path = holder_path(self.owner_id, name)
        with open(dest, "wb") as fobj:  # noqa: ASYNC230 - a local temp file
            sink = _DecryptingSink(fobj, self._owner_key, self.file_id(name))
            async with self.node.client.stream(holder.address, "GET", path, headers=headers) as r:
                await write_stream(sink, r.content.iter_chunked(CHUNK))
            await asyncio.to_thread(sink.finish)
        return sink.size, sink.hash.hexdigest()

    # --- delete --------------------------------------------------------------------------

    async def delete(self, name: str) -> OwnedDeleted:
        """Forget ``name`` on the tracker, then remove every holder's copy."""
        check_filename_or_400(name)
        req = OwnedSigned(auth=self._signed("delete", name))
        rec: OwnedRecord = await self._call("POST", "/v1/owned/delete", req, OwnedRecord)
        removed, unreachable = await self._drop_copies(name, rec.holders)
        await asyncio.to_thread(self._forget, name)
        return OwnedDeleted(name=name, removed_from=removed, unreachable=unreachable)

    async def _drop_copies(
        self, name: str, holders: list[OwnedHolder]
    ) -> tuple[list[str], list[str]]:
        async def drop(holder: OwnedHolder) -> bool:
            assert self.node.client is not None
            headers = {OWNER_AUTH_HEADER: self._signed("delete", name).model_dump_json()}
            path = holder_path(self.owner_id, name)
            try:
                async with self.node.client.stream(
                    holder.address, "DELETE", path, headers=headers
                ) as resp:
                    await resp.read()
            except NotFound:
                return True  # already gone
            except (PeerOSError, *_LINK_ERRORS) as exc:
                log.warning("cannot remove %r from %s: %s", name, holder.peer_id, exc)
                return False
            return True

        results = await asyncio.gather(*(drop(h) for h in holders))
        removed = [h.peer_id for h, ok in zip(holders, results, strict=True) if ok]
        unreachable = [h.peer_id for h, ok in zip(holders, results, strict=True) if not ok]
        return removed, unreachable

    # --- list ----------------------------------------------------------------------------

    async def list(self, refresh: bool = False) -> OwnedList:
        """This owner's files; rebuilt from the tracker when the local list is missing."""
        files = await asyncio.to_thread(self._read_index)
        if files is not None and not refresh:
            return OwnedList(
                files=[
                    OwnedRecord.model_validate({k: v for k, v in e.items() if k != "wrapped_key"})
                    for e in sorted(files.values(), key=lambda e: str(e.get("name")))
                ]
            )
        got: OwnedList = await self._call("GET", "/v1/owned", None, OwnedList)
        old = files or {}
        rebuilt: dict[str, dict[str, Any]] = {}
        for rec in got.files:
            entry = rec.model_dump()
            with contextlib.suppress(KeyError):
                entry["wrapped_key"] = old[rec.name]["wrapped_key"]
            rebuilt[rec.name] = entry
        await asyncio.to_thread(self._write_index, rebuilt)
        log.info("owned list rebuilt from the tracker: %d files", len(rebuilt))
        return got
