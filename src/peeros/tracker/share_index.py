"""The tracker's file index (Napster's central directory): who shares which file.

Each peer sends its whole list whenever it changes; the list replaces the previous one
in SQLite. A lookup answers with the matching files and, for each, its holders that are
alive right now (a dead peer's files stay indexed and reappear when it comes back).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

from peeros.db import TrackerDB
from peeros.db_tables import ShareIndexDB
from peeros.errors import BadRequest
from peeros.net.server import PEER_ID, json_response, read_model
from peeros.protocol import (
    ShareAssignment,
    ShareAssignments,
    ShareHit,
    ShareHits,
    ShareHolder,
    ShareIndex,
    ShareLookup,
)
from peeros.share.replication import Held, plan
from peeros.tracker.registry import Registry

log = logging.getLogger(__name__)


#: Seconds a peer has to make a copy it was asked for before another peer is asked.
ASSIGNMENT_TIMEOUT = 120.0


class ShareIndexService:
    """The index, and the coordinator that keeps ``factor`` live copies of every file."""

    def __init__(
        self, db: TrackerDB, registry: Registry, clock: Callable[[], float], factor: int = 2
    ) -> None:
        self.db = ShareIndexDB(db)
        self.registry = registry
        self.clock = clock
        self.factor = factor
        #: (target peer, sha256) -> deadline of a copy the coordinator asked for
        self.in_flight: dict[tuple[str, str], float] = {}

    def update(self, peer_id: str, index: ShareIndex) -> dict[str, int]:
        rows = [(f.kind, f.name, f.size, f.sha256) for f in index.files]
        self.db.replace(peer_id, rows)
        for f in index.files:
            self.in_flight.pop((peer_id, f.sha256), None)
        log.info("peer %s shares %d files", peer_id, len(rows))
        return {"files": len(rows)}

    def lookup(self, req: ShareLookup) -> ShareHits:
        if req.sha256 is not None:
            rows = self.db.find("sha256", req.sha256)
        else:
            if not req.query.strip():
                raise BadRequest("the query is empty; give a name, a pattern or --hash")
            rows = self.db.find(req.mode, req.query)
        now = self.clock()
        alive = {r.peer_id: r.address for r in self.registry.alive(now)}
        grouped: dict[tuple[str, str, int], list[ShareHolder]] = {}
        for r in rows:
            holders = grouped.setdefault((r["name"], r["sha256"], r["size"]), [])
            address = alive.get(r["peer_id"])
            if address is not None and all(h.peer_id != r["peer_id"] for h in holders):
                holders.append(ShareHolder(peer_id=r["peer_id"], address=address))
        # The same content under one name on many peers is one hit; files with no live
        # holder are not worth listing.
        hits = [
            ShareHit(name=name, size=size, sha256=sha, holders=holders)
            for (name, sha, size), holders in grouped.items()
            if holders
        ]
        return ShareHits(hits=hits)

    def assignments(self, peer_id: str) -> ShareAssignments:
        """The copies ``peer_id`` should make now (see :func:`peeros.share.replication.plan`)."""
        now = self.clock()
        self.in_flight = {k: t for k, t in self.in_flight.items() if t > now}
        alive = {r.peer_id: r.address for r in self.registry.alive(now)}
        held = [Held(r["peer_id"], r["sha256"], r["name"], r["size"]) for r in self.db.all()]
        mine: list[ShareAssignment] = []
        for step in plan(held, alive, self.factor, self.in_flight):
            if step.target != peer_id:
                continue
            self.in_flight[(peer_id, step.sha256)] = now + ASSIGNMENT_TIMEOUT
            sources = [ShareHolder(peer_id=p, address=alive[p]) for p in step.sources]
            mine.append(
                ShareAssignment(sha256=step.sha256, name=step.name, size=step.size, holders=sources)
            )
        if mine:
            log.info("asked peer %s to replicate %d files", peer_id, len(mine))
        return ShareAssignments(assignments=mine)


SHARE_INDEX = web.AppKey("share_index", ShareIndexService)


async def _update(request: web.Request) -> web.Response:
    index = await read_model(request, ShareIndex)
    return json_response(request.app[SHARE_INDEX].update(request[PEER_ID], index))


async def _lookup(request: web.Request) -> web.Response:
    req = await read_model(request, ShareLookup)
    return json_response(request.app[SHARE_INDEX].lookup(req))


async def _assignments(request: web.Request) -> web.Response:
    return json_response(request.app[SHARE_INDEX].assignments(request[PEER_ID]))


def add_share_routes(app: web.Application, service: ShareIndexService) -> None:
    app[SHARE_INDEX] = service
    app.router.add_post("/v1/share/index", _update)
    app.router.add_post("/v1/share/lookup", _lookup)
    app.router.add_post("/v1/share/assignments", _assignments)
