"""The tracker's business logic, independent of HTTP: one method per operation.

Routes only parse and forward (see :mod:`peeros.tracker.routes`). The registry is pure
(:mod:`peeros.tracker.registry`); this class adds the clock, persistence and logging.
Every change is written to SQLite *before* it is acknowledged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from peeros import __version__
from peeros.db import TrackerDB
from peeros.errors import Forbidden, NotFound, Unavailable
from peeros.protocol import (
    EnrollRequest,
    EnrollResponse,
    Heartbeat,
    HeartbeatAck,
    Placement,
    PlacementRequest,
    Placements,
    TrackerStatus,
)
from peeros.security.pki import ClusterCA, JoinToken, cert_pem
from peeros.tracker.registry import PeerRecord, Registry

log = logging.getLogger(__name__)


class TrackerService:
    def __init__(
        self,
        db: TrackerDB,
        ca: ClusterCA,
        token: JoinToken,
        dead_after: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.ca = ca
        self.token = token
        self.clock = clock
        self.started = clock()
        self.address = ""
        self.placements_served = 0
        self.placement_requests = 0
        records = [PeerRecord.from_row(r) for r in db.load_peers()]
        self.registry = Registry(dead_after, records)

    def enroll(self, req: EnrollRequest) -> EnrollResponse:
        if not self.token.secret_matches(req.secret):
            log.warning("enrollment refused: wrong join token secret")
            raise Forbidden("wrong join token")
        peer_id, cert = self.ca.sign_csr(req.csr_pem)
        log.info("enrolled peer %s", peer_id)
        return EnrollResponse(
            peer_id=peer_id, certificate_pem=cert_pem(cert), ca_pem=cert_pem(self.ca.cert)
        )

    def heartbeat(self, peer_id: str, hb: Heartbeat) -> HeartbeatAck:
        old = self.registry.get(peer_id)
        rec = self.registry.heartbeat(peer_id, hb, self.clock())
        self.db.upsert_peer(rec.to_row())
        if old is None or old.state != "alive" or old.address != rec.address:
            log.info("peer %s registered at %s", peer_id, rec.address)
        return HeartbeatAck(peer_id=peer_id)

    def leave(self, peer_id: str) -> None:
        rec = self.registry.leave(peer_id)
        if rec is None:
            raise NotFound(f"peer {peer_id} is not registered")
        self.db.set_peer_state(peer_id, "left")
        log.info("peer %s left", peer_id)

    def sweep(self) -> list[PeerRecord]:
        died = self.registry.sweep(self.clock())
        for rec in died:
            self.db.set_peer_state(rec.peer_id, "dead")
            log.warning(
                "peer %s declared dead (silent for %.1fs)", rec.peer_id, self.registry.dead_after
            )
        return died

    def place(self, req: PlacementRequest) -> Placements:
        records = self.registry.place_many(self.clock(), req.count, req.exclude)
        if not records and req.count > 0:
            raise Unavailable("no live peer can take this task")
        one: dict[str, Placement] = {}  # one (immutable) placement object per peer
        chosen = [
            one.get(r.peer_id)
            or one.setdefault(r.peer_id, Placement(peer_id=r.peer_id, address=r.address))
            for r in records
        ]
        self.placements_served += req.count
        self.placement_requests += 1
        return Placements(placements=chosen)

    def status(self) -> TrackerStatus:
        now = self.clock()
        return TrackerStatus(
            version=__version__,
            address=self.address,
            ca_fingerprint=self.ca.fingerprint,
            peers_alive=len(self.registry.alive(now)),
            peers_total=len(self.registry),
            uptime=now - self.started,
            schema_version=self.db.schema_version,
            placements_served=self.placements_served,
            placement_requests=self.placement_requests,
        )
