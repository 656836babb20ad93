"""Flooding mode on a running peer: neighbour hellos, forwarding queries, searching.

The decisions are :mod:`peeros.share.flood`'s; this module does the I/O. A query is
forwarded as a cluster-plane request whose *response* carries the hits found
downstream, so hits return along the query's path by construction, and a search is
complete when its flood is (each hop waits at most ``HOP_TIMEOUT`` x the TTL left).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import secrets
import time
from typing import TYPE_CHECKING

from aiohttp import web

from peeros.errors import BadRequest, PeerOSError
from peeros.net.server import json_response, read_model
from peeros.protocol import (
    FloodHello,
    FloodHit,
    FloodHits,
    FloodQuery,
    FloodSearch,
    FloodStats,
    ShareHolder,
)
from peeros.share.flood import Neighbours, SeenCache, decide, matches

if TYPE_CHECKING:
    from peeros.share.peer import SharePeer

log = logging.getLogger(__name__)

#: Seconds one hop may take; a query with TTL t waits at most t times this downstream.
HOP_TIMEOUT = 2.0
#: Query ids whose message counts ``stats`` keeps.
STATS_IDS = 1000


class FloodService:
    def __init__(self, share: SharePeer, neighbors: tuple[str, ...], interval: float) -> None:
        self.share = share
        self.interval = interval
        self.configured = neighbors
        self.table: Neighbours | None = None  # made once our address is known
        self.seen = SeenCache()
        self.received = 0
        self.duplicates = 0
        self.answered = 0
        self.forwarded: collections.Counter[str] = collections.Counter()
        self.received_by_id: collections.Counter[str] = collections.Counter()

    @property
    def me(self) -> str:
        return self.share.node.address

    def _table(self) -> Neighbours:
        if self.table is None:
            self.table = Neighbours.configured(self.me, self.configured, 3 * self.interval + 0.5)
        return self.table

    def live(self) -> list[str]:
        return self._table().alive(time.monotonic())

    # --- neighbour liveness -----------------------------------------------------------

    def hello(self, got: FloodHello) -> FloodHello:
        self._table().heard(got.address, got.neighbors, time.monotonic())
        return FloodHello(address=self.me, neighbors=self.live())

    async def _greet(self, address: str) -> None:
        mine = FloodHello(address=self.me, neighbors=self.live())
        try:
            got: FloodHello = await self.share.fetcher().client.request(
                address, "POST", "/v1/flood/hello", mine, FloodHello, timeout=2 * self.interval + 1
            )
        except PeerOSError as exc:
            log.debug("neighbour %s did not answer: %s", address, exc)
            return
        self._table().heard(address, got.neighbors, time.monotonic())

    async def run(self) -> None:
        while True:
            before = set(self.live())
            targets = self._table().to_greet(time.monotonic())
            await asyncio.gather(*(self._greet(a) for a in targets))
            after = set(self.live())
            if before != after:
                log.info("flood neighbours: %s", ", ".join(sorted(after)) or "none")
            await asyncio.sleep(self.interval)

    # --- queries ----------------------------------------------------------------------

    def _local_hits(self, q: FloodQuery | FloodSearch, hops: int) -> list[FloodHit]:
        node = self.share.node
        holder = ShareHolder(peer_id=node.peer_id, address=self.me)
        found: dict[str, FloodHit] = {}
        for scanner in self.share.service.scanners.values():
            for e in scanner.entries.values():
                ok = e.sha256 == q.sha256 if q.sha256 else matches(e.name, q.query, q.mode)
                if ok and e.sha256 not in found:
                    found[e.sha256] = FloodHit(
                        name=e.name, size=e.size, sha256=e.sha256, holder=holder, hops=hops
                    )
        return list(found.values())

    async def _forward(self, q: FloodQuery, targets: tuple[str, ...]) -> list[FloodHit]:
        if not targets:
            return []
        self._count(self.forwarded, q.id)
        client = self.share.fetcher().client
        timeout = HOP_TIMEOUT * q.ttl

        async def one(address: str) -> list[FloodHit]:
            try:
                got: FloodHits = await client.request(
                    address, "POST", "/v1/flood/query", q, FloodHits, timeout=timeout
                )
            except PeerOSError as exc:
                log.info("forwarding query %s to %s failed: %s", q.id[:8], address, exc)
                return []
            return got.hits

        results = await asyncio.gather(*(one(a) for a in targets))
        return [h for hits in results for h in hits]

    def _count(self, counter: collections.Counter[str], qid: str) -> None:
        counter[qid] += 1
        while len(counter) > STATS_IDS:  # oldest ids first (insertion order)
            del counter[next(iter(counter))]

    async def on_query(self, q: FloodQuery) -> FloodHits:
        """A query from a neighbour: answer, forward (once per id), return all hits."""
        self.received += 1
        self._count(self.received_by_id, q.id)
        d = decide(self.seen, q.id, q.ttl, q.sender, self.live(), time.monotonic())
        if d.duplicate:
            self.duplicates += 1
            return FloodHits(hits=[])
        hits = self._local_hits(q, q.hops)
        if hits:
            self.answered += 1
        onward = q.model_copy(update={"ttl": d.ttl, "hops": q.hops + 1, "sender": self.me})
        hits += await self._forward(onward, d.forward_to)
        return FloodHits(hits=hits)

    async def search(self, req: FloodSearch) -> FloodHits:
        """Our user's search: flood it out, gather what comes back, record the query."""
        if req.sha256 is None and not req.query.strip():
            raise BadRequest("the query is empty; give a name, a pattern or --hash")
        if not self.live():
            raise BadRequest("this peer has no live neighbours to search (see --neighbors)")
        started = time.perf_counter()
        qid = secrets.token_hex(16)
        d = decide(self.seen, qid, req.ttl, None, self.live(), time.monotonic())
        q = FloodQuery(
            id=qid,
            query=req.query,
            mode=req.mode,
            sha256=req.sha256,
            ttl=req.ttl,
            hops=1,
            sender=self.me,
        )
        hits = await self._forward(q, d.forward_to)
        unique = {(h.holder.peer_id, h.sha256): h for h in hits if h.holder.address != self.me}
        seconds = time.perf_counter() - started
        await asyncio.to_thread(
            self.share.service.record_query,
            req.sha256 or req.query,
            "flood-" + ("sha256" if req.sha256 else req.mode),
            seconds,
            len(unique),
        )
        return FloodHits(
            hits=sorted(unique.values(), key=lambda h: (h.hops, h.name)), seconds=seconds
        )

    def stats(self) -> FloodStats:
        return FloodStats(
            neighbors=self.live(),
            received=self.received,
            duplicates=self.duplicates,
            answered=self.answered,
            forwarded=dict(self.forwarded),
            received_by_id=dict(self.received_by_id),
            peer_id=self.share.node.peer_id,
        )


def add_routes(cluster_app: web.Application, api_app: web.Application, flood: FloodService) -> None:
    async def hello(request: web.Request) -> web.Response:
        return json_response(flood.hello(await read_model(request, FloodHello)))

    async def query(request: web.Request) -> web.Response:
        return json_response(await flood.on_query(await read_model(request, FloodQuery)))

    async def search(request: web.Request) -> web.Response:
        return json_response(await flood.search(await read_model(request, FloodSearch)))

    async def stats(request: web.Request) -> web.Response:
        return json_response(flood.stats())

    cluster_app.router.add_post("/v1/flood/hello", hello)
    cluster_app.router.add_post("/v1/flood/query", query)
    api_app.router.add_post("/v1/flood/search", search)
    api_app.router.add_get("/v1/flood/stats", stats)
