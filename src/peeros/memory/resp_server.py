"""The Redis-protocol front of a peer's store: asyncio transport around the sans-IO codec.

Parsing and command semantics are pure (:mod:`peeros.memory.resp`,
:mod:`peeros.memory.commands`); this module only moves bytes. One ``data_received``
call executes every complete command it carries and answers them with a single write,
which is what makes pipelining (``redis-benchmark -P 16``) cheap. A protocol error is
answered and the connection closed, as Redis does. Writes that pile up (a client that
pipelines without reading) pause reading until the buffer drains.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import cast

from peeros.memory.commands import CommandProcessor, Session
from peeros.memory.resp import RespParser, RespProtocolError, error

log = logging.getLogger(__name__)


class RespProtocol(asyncio.Protocol):
    def __init__(self, processor: CommandProcessor) -> None:
        self.processor = processor
        self.parser = RespParser()
        self.session = Session()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (duck-typed: uvloop's transports are not asyncio.Transport subclasses)
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport.set_write_buffer_limits(high=4 << 20)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.parser.feed(data)
        replies: list[bytes] = []
        try:
            while (command := self.parser.next_command()) is not None:
                replies.append(self.processor.execute(self.session, command))
                if self.session.authenticated:
                    self.parser.authenticated = True
                if self.session.closing:
                    break
        except RespProtocolError as exc:
            replies.append(error(f"ERR {exc}"))  # Redis: addReplyError adds "-ERR "
            self.session.closing = True
        if replies:
            self.transport.write(b"".join(replies))
        if self.session.closing:
            self.transport.close()

    def pause_writing(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()


async def serve_resp(
    processor_factory: Callable[[], CommandProcessor], host: str, port: int
) -> tuple[asyncio.Server, int]:
    """Listen on ``host:port`` (0 = any free port); return the server and its port."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: RespProtocol(processor_factory()), host, port)
    bound = server.sockets[0].getsockname()[1]
    return server, int(bound)
