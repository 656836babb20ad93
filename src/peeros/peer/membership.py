"""A peer's relation with the tracker: heartbeats, the cached member list, leaving.

The peer keeps working when the tracker is down: heartbeats fail quietly (logged once
per outage), the last member list stays available (marked stale), and the first
heartbeat that gets through re-registers the peer, since registration and heartbeat are
the same message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from peeros.errors import PeerOSError, Unavailable
from peeros.net.client import ClusterClient
from peeros.protocol import Heartbeat, HeartbeatAck, PeerList

log = logging.getLogger(__name__)


class Membership:
    def __init__(
        self,
        client: ClusterClient,
        tracker: str,
        make_heartbeat: Callable[[], Heartbeat],
        interval: float,
    ) -> None:
        self.client = client
        self.tracker = tracker
        self.make_heartbeat = make_heartbeat
        self.interval = interval
        self.reachable = False
        self.last_ok: float | None = None
        self._cached: PeerList | None = None

    async def beat(self) -> HeartbeatAck:
        ack: HeartbeatAck = await self.client.request(
            self.tracker, "POST", "/v1/heartbeat", self.make_heartbeat(), HeartbeatAck
        )
        if not self.reachable:
            log.info("tracker %s reachable; registered as %s", self.tracker, ack.peer_id)
        self.reachable = True
        self.last_ok = time.time()
        return ack

    async def run(self) -> None:
        while True:
            try:
                await self.beat()
            except PeerOSError as exc:
                if self.reachable or self.last_ok is None:
                    log.warning("heartbeat to tracker %s failed: %s", self.tracker, exc)
                self.reachable = False
            await asyncio.sleep(self.interval)

    async def peers(self) -> PeerList:
        try:
            plist: PeerList = await self.client.request(
                self.tracker, "GET", "/v1/peers", response=PeerList
            )
        except Unavailable:
            if self._cached is None:
                raise
            return self._cached.model_copy(update={"stale": True})
        self._cached = plist
        return plist

    async def leave(self) -> None:
        try:
            await self.client.request(self.tracker, "POST", "/v1/leave", timeout=2.0)
        except PeerOSError as exc:
            log.info("could not unregister from the tracker: %s", exc)
