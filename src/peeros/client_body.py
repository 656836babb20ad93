"""A reply of :class:`~peeros.client_http.BlockingHTTP` whose body the caller reads in
pieces: file downloads, which must not be read whole into memory.

The body's framing (``Content-Length``, chunked, or up to the end of the connection) is
followed here on top of the connection's own buffer, so that the connection can be kept
for the next request once the body has been read to its end (:attr:`Reply.done`).
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from peeros.client_http import _Conn

_HEX = frozenset(b"0123456789abcdefABCDEF")


class Reply:
    """Status, headers (lower-case names) and a body to read with :meth:`read`,
    :meth:`readline` or :meth:`read_into`. A body cut short raises ``ConnectionError``."""

    def __init__(
        self, conn: _Conn, status: int, reason: str, headers: dict[str, str], will_close: bool
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.will_close = will_close
        self._conn = conn
        self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        #: The body's size when announced (``Content-Length``), else ``None``.
        self.length: int | None = None
        if self.chunked:
            pass
        elif "content-length" in headers:
            value = headers["content-length"]
            if not value.isdigit():
                raise ConnectionError(f"a bad Content-Length in the reply: {value[:40]!r}")
            self.length = int(value)
        elif status in (204, 304):
            self.length = 0
        else:  # delimited by the end of the connection
            self.will_close = True
        self._left = self.length  # body bytes not yet read, when the length is known
        self._chunk = 0  # bytes left in the current chunk
        self._chunks = 0  # chunks begun
        #: The body was read to its end.
        self.done = self.length == 0

    @property
    def sock(self) -> socket.socket:
        return self._conn.sock

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes of the body: ``n`` unless the body ends first; ``b""`` at its end."""
        buf = self._conn.buf
        out = bytearray()
        while len(out) < n:
            span = self._span()
            if not span:
                break
            if not buf:
                self._conn._fill()
            take = min(n - len(out), span, len(buf))
            out += buf[:take]
            del buf[:take]
            self._consumed(take)
        return bytes(out)

    def readline(self, limit: int) -> bytes:
        """Body bytes up to and including the next ``\\n`` (at most ``limit`` of them)."""
        buf = self._conn.buf
        out = bytearray()
        while len(out) < limit:
            span = self._span()
            if not span:
                break
            if not buf:
                self._conn._fill()
            window = min(span, limit - len(out), len(buf))
            end = buf.find(b"\n", 0, window)
            take = window if end < 0 else end + 1
            out += buf[:take]
            del buf[:take]
            self._consumed(take)
            if end >= 0:
                break
        return bytes(out)

    def read_into(self, view: memoryview, waitall: bool = False) -> None:
        """Fill ``view`` with the next ``len(view)`` bytes of a body of known length: what
        the connection has buffered, then straight from the socket (``waitall``: one
        ``recv(MSG_WAITALL)`` for the rest, on a plain socket in blocking mode)."""
        if self._left is None or len(view) > self._left:
            raise ValueError("read_into reads within a body of known length only")
        buf = self._conn.buf
        got = min(len(buf), len(view))
        if got:
            view[:got] = buf[:got]
            del buf[:got]
        flags = socket.MSG_WAITALL if waitall else 0
        while got < len(view):
            n = self._conn.sock.recv_into(view[got:], len(view) - got, flags)
            if not n:
                raise ConnectionError("the connection closed before the reply was complete")
            got += n
        self._consumed(len(view))

    def drain(self, limit: int) -> bytes:
        """The rest of the body (an error reply's), at most ``limit`` bytes kept."""
        out = bytearray()
        while piece := self.read(64 << 10):
            if len(out) < limit:
                out += piece
        return bytes(out[:limit])

    def _span(self) -> int:
        """Body bytes that may be taken before the next framing boundary; 0 at the end."""
        if self.done:
            return 0
        if self.chunked:
            if self._chunk == 0:
                if self._chunks:
                    self._conn._take(2)  # the CRLF after a chunk's data
                text = self._conn._line().split(b";")[0].strip()
                if not text or not set(text) <= _HEX:
                    raise ConnectionError(f"a bad chunk size in the reply: {text[:40]!r}")
                self._chunks += 1
                self._chunk = int(text, 16)
                if self._chunk == 0:
                    while self._conn._line():  # trailers, up to the empty line
                        pass
                    self.done = True
            return self._chunk
        if self._left is not None:
            return self._left
        if not self._conn.buf:  # up to the end of the connection
            try:
                self._conn._fill()
            except ConnectionError:
                self.done = True
                return 0
        return len(self._conn.buf)

    def _consumed(self, n: int) -> None:
        if self.chunked:
            self._chunk -= n
        elif self._left is not None:
            self._left -= n
            self.done = self._left == 0
