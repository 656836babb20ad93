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
from peeros.protocol import Heartbeat, HeartbeatAck, PeerInfo, PeerList

log = logging.getLogger(__name__)

#: Seconds a member list stays good enough to find a live peer's address (``?on=``).
FIND_MAX_AGE = 2.0


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
        self._cached_at = 0.0

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

    async def peers(self, max_age: float = 0.0) -> PeerList:
        """The tracker's member list; one fetched less than ``max_age`` seconds ago may
        be reused (relaying many small requests should not ask the tracker each time)."""
        if (
            max_age > 0
            and self._cached is not None
            and not self._cached.stale
            and time.monotonic() - self._cached_at < max_age
        ):
            return self._cached
        try:
            plist: PeerList = await self.client.request(
                self.tracker, "GET", "/v1/peers", response=PeerList
            )
        except Unavailable:
            if self._cached is None:
                raise
            return self._cached.model_copy(update={"stale": True})
        self._cached = plist
        self._cached_at = time.monotonic()
        return plist

    async def find(self, peer_id: str) -> PeerInfo | None:
        """``peer_id``'s entry. A list from the last ``FIND_MAX_AGE`` seconds is trusted
        only to say where a live peer is; anything else (unknown, dead) is asked of the
        tracker again, so relaying many small requests costs no tracker round trip each."""
        for p in (await self.peers(max_age=FIND_MAX_AGE)).peers:
            if p.peer_id == peer_id and p.alive:
                return p
        for p in (await self.peers()).peers:
            if p.peer_id == peer_id:
                return p
        return None

    async def leave(self) -> None:
        try:
            await self.client.request(self.tracker, "POST", "/v1/leave", timeout=2.0)
        except PeerOSError as exc:
            log.info("could not unregister from the tracker: %s", exc)
