"""Futures that tell plain listeners the moment they settle.

asyncio runs a future's done-callbacks one turn of the event loop later, after whatever
was queued meanwhile (a task's end queues a good deal of bookkeeping). A listener added
with :meth:`EagerFuture.listen` runs inside ``set_result`` / ``set_exception`` /
``cancel`` instead, so a reply can be written before the bookkeeping that follows in the
same callback: the caller's next step and our bookkeeping then overlap.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class EagerFuture(asyncio.Future[T]):
    """An :class:`asyncio.Future` whose :meth:`listen` listeners are called at once when
    it settles (awaiting it and its done-callbacks work as for any future)."""

    _listeners: list[Callable[[EagerFuture[T]], None]] | None = None

    def listen(self, listener: Callable[[EagerFuture[T]], None]) -> None:
        """Call ``listener(self)`` when the future settles: now if it has."""
        if self.done():
            listener(self)
            return
        if self._listeners is None:
            self._listeners = []
        self._listeners.append(listener)

    def set_result(self, result: T, /) -> None:
        super().set_result(result)
        self._tell()

    def set_exception(self, exception: type[BaseException] | BaseException, /) -> None:
        super().set_exception(exception)
        self._tell()

    def cancel(self, msg: Any | None = None) -> bool:
        cancelled = super().cancel(msg)
        if cancelled:
            self._tell()
        return cancelled

    def _tell(self) -> None:
        listeners, self._listeners = self._listeners, None
        for listener in listeners or ():
            try:
                listener(self)
            except Exception:  # one listener's failure must not hide the result from others
                log.exception("a listener of a future failed")


def eager_future() -> EagerFuture[Any]:
    """A new :class:`EagerFuture` on the running loop."""
    return EagerFuture(loop=asyncio.get_running_loop())


async def raising(exc: BaseException) -> Any:
    """An awaitable that raises ``exc``: an error found before the work it stands for
    went out, given to whoever awaits that work."""
    raise exc
