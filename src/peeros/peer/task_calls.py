"""How a peer's tasks cross to other nodes: placement requests to the tracker,
``execute`` and cancel calls to peers, and the ``execute`` operation it serves on its
links (the HTTP route is ``routes.execute``)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from peeros.errors import Unavailable
from peeros.net.link_server import Later
from peeros.protocol import (
    Body,
    ExecuteRequest,
    ExecuteResponse,
    Placement,
    PlacementRequest,
    Placements,
)

if TYPE_CHECKING:
    from peeros.peer.node import PeerNode


class TaskCalls:
    """The task calls of ``node`` (its link client exists once it runs)."""

    def __init__(self, node: PeerNode) -> None:
        self.node = node

    async def place(self, count: int, exclude: list[str]) -> list[Placement]:
        assert self.node.links is not None and self.node.settings.tracker
        req = PlacementRequest(count=count, exclude=exclude)
        got = await self.node.links.call(
            self.node.settings.tracker, "placement", req, Placements, None
        )
        return got.placements

    def remote_execute(self, address: str, req: Body, timeout: float) -> Awaitable[ExecuteResponse]:
        """Send ``execute`` to ``address`` (at once when the link is open); the reply is
        awaited. A peer that became unavailable loses its leases."""
        assert self.node.links is not None
        return self._forgetting(
            address, self.node.links.start(address, "execute", req, ExecuteResponse, timeout)
        )

    async def _forgetting(self, address: str, reply: Awaitable[ExecuteResponse]) -> ExecuteResponse:
        try:
            return await reply
        except Unavailable:
            if self.node.placer is not None:
                self.node.placer.forget(address)
            raise

    def execute_op(self, origin: str, body: str) -> Later:
        """``execute`` over a link (the HTTP route is ``routes.execute``): the tasks are
        queued as the frame is read (a lone one starts there and then); the reply is
        written the moment the last one ends, before the scheduler's work that follows."""
        pending = self.node.executor.start(origin, ExecuteRequest.model_validate_json(body).tasks)
        later = Later()

        def reply() -> ExecuteResponse:
            return ExecuteResponse(results=self.node.executor.results(pending))

        self.node.executor.when_done(pending, lambda: later.give(reply))
        return later

    async def remote_cancel(self, address: str, task_id: str) -> None:
        assert self.node.client is not None
        await self.node.client.request(address, "POST", f"/v1/tasks/{task_id}/cancel")
