"""An owned upload streamed: plaintext in, encrypted once, sent to every holder at once.

Chunk i is encrypted in a thread (AES-GCM releases the GIL) while chunk i+1 arrives, and
each ciphertext chunk goes to every holder's upload through a small queue. Memory stays
at a few chunks per holder whatever the file size, nothing is written to a temp file,
and reading, encrypting and the holders' uploads all overlap. The slowest holder sets
the pace (a full queue makes the reader wait).

If the plaintext ends early or any holder fails, every upload still running is
cancelled: its connection closes before the declared ``Content-Length``, so that holder
discards what it received and stores nothing. Holders that had already answered are
reported, for the caller to remove their copies.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError

from peeros.errors import BadRequest
from peeros.files.crypto import Encryptor
from peeros.files.transfer import coalesce

__all__ = ["QUEUE_DEPTH", "Spread", "spread"]

#: Ciphertext chunks (1 MiB) buffered per holder before the reader waits.
QUEUE_DEPTH = 4
#: A request body that ends early (the client closed or broke the connection).
_CUT_OFF = (ConnectionError, aiohttp.ClientPayloadError, HttpProcessingError)

Upload = Callable[[AsyncIterator[bytes]], Awaitable[object]]


class Spread:
    """The outcome: which uploads completed, and the first failure (``None``: all did)."""

    def __init__(self, done: list[bool], error: BaseException | None) -> None:
        self.done = done
        self.error = error


async def spread(
    name: str,
    body: AsyncIterable[bytes],
    size: int,
    head: bytes,
    enc: Encryptor,
    uploads: Sequence[Upload],
) -> Spread:
    """Send ``head`` then the encryption of ``size`` plaintext bytes of ``body`` to
    every upload (each given the same stream as an async iterator of bytes)."""
    # None ends a stream.
    queues: list[asyncio.Queue[bytes | None]] = [asyncio.Queue(QUEUE_DEPTH) for _ in uploads]
    done = [False] * len(uploads)
    loop = asyncio.get_running_loop()

    async def fan(chunk: bytes) -> None:
        if chunk:
            for q in queues:
                await q.put(chunk)

    async def feed(q: asyncio.Queue[bytes | None]) -> AsyncIterator[bytes]:
        while (item := await q.get()) is not None:
            yield item

    async def upload(i: int) -> None:
        await uploads[i](feed(queues[i]))
        done[i] = True

    async def produce() -> None:
        await fan(head)
        got = 0
        pending: asyncio.Future[bytes] | None = None
        try:
            async for chunk in coalesce(body):
                got += len(chunk)
                if pending is not None:
                    await fan(await pending)
                pending = loop.run_in_executor(None, enc.update, chunk)
        except _CUT_OFF as exc:
            raise BadRequest(f"upload of {name!r} was cut off; nothing was stored") from exc
        if pending is not None:
            await fan(await pending)
        if got != size:
            raise BadRequest(
                f"upload of {name!r} was cut off after {got} of {size} bytes; nothing was stored"
            )
        await fan(await loop.run_in_executor(None, enc.finalize))
        for q in queues:
            await q.put(None)

    try:
        async with asyncio.TaskGroup() as tg:
            for i in range(len(uploads)):
                tg.create_task(upload(i))
            tg.create_task(produce())
    except ExceptionGroup as group:
        return Spread(done, _first(group))
    return Spread(done, None)


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first
