"""The tracker's peer registry: pure state transitions, persisted by the caller.

Every method takes ``now`` (wall-clock seconds) instead of reading a clock, so tests can
drive time. A peer is *alive* while its state is ``alive`` and its last heartbeat is at
most ``dead_after`` seconds old; :meth:`sweep` turns silent peers ``dead`` and returns
them so the tracker can log, persist and (later) re-replicate.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from peeros.protocol import Heartbeat, Load, PeerInfo
from peeros.tracker.placement import Candidate, choose, choose_many

State = Literal["alive", "dead", "left"]


@dataclass(frozen=True)
class PeerRecord:
    peer_id: str
    address: str
    api_url: str | None
    load: Load
    last_heartbeat: float
    registered_at: float
    state: State
    version: str = ""

    def to_row(self) -> dict[str, Any]:
        return {
            "peer_id": self.peer_id,
            "address": self.address,
            "api_url": self.api_url,
            "load": self.load.model_dump(),
            "last_heartbeat": self.last_heartbeat,
            "registered_at": self.registered_at,
            "state": self.state,
            "version": self.version,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> PeerRecord:
        return cls(
            peer_id=row["peer_id"],
            address=row["address"],
            api_url=row["api_url"],
            load=Load.model_validate(row["load"]),
            last_heartbeat=row["last_heartbeat"],
            registered_at=row["registered_at"],
            state=row["state"],
            version=row["version"],
        )


class Registry:
    def __init__(self, dead_after: float, records: list[PeerRecord] | None = None) -> None:
        self.dead_after = dead_after
        self._peers: dict[str, PeerRecord] = {r.peer_id: r for r in records or []}
        #: Tasks placed on each peer since its last heartbeat.
        self._placed: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._peers)

    def get(self, peer_id: str) -> PeerRecord | None:
        return self._peers.get(peer_id)

    def is_alive(self, rec: PeerRecord, now: float) -> bool:
        return rec.state == "alive" and now - rec.last_heartbeat <= self.dead_after

    def heartbeat(self, peer_id: str, hb: Heartbeat, now: float) -> PeerRecord:
        """Register or refresh a peer. The address may change (identity survives moves)."""
        old = self._peers.get(peer_id)
        rec = PeerRecord(
            peer_id=peer_id,
            address=hb.address,
            api_url=hb.api_url,
            load=hb.load,
            last_heartbeat=now,
            registered_at=old.registered_at if old else now,
            state="alive",
            version=hb.version,
        )
        self._peers[peer_id] = rec
        self._placed[peer_id] = 0
        return rec

    def leave(self, peer_id: str) -> PeerRecord | None:
        old = self._peers.get(peer_id)
        if old is None:
            return None
        rec = replace(old, state="left")
        self._peers[peer_id] = rec
        self._placed.pop(peer_id, None)
        return rec

    def sweep(self, now: float) -> list[PeerRecord]:
        """Mark peers silent for longer than ``dead_after`` as dead; return them."""
        died = []
        for rec in list(self._peers.values()):
            if rec.state == "alive" and not self.is_alive(rec, now):
                dead = replace(rec, state="dead")
                self._peers[rec.peer_id] = dead
                self._placed.pop(rec.peer_id, None)
                died.append(dead)
        return died

    def alive(self, now: float) -> list[PeerRecord]:
        return [r for r in self._peers.values() if self.is_alive(r, now)]

    def _candidates(self, now: float) -> list[Candidate]:
        return [
            Candidate(
                peer_id=r.peer_id,
                slots=r.load.slots,
                queued=r.load.queued,
                running=r.load.running,
                placed=self._placed.get(r.peer_id, 0),
                cpu_percent=r.load.cpu_percent,
            )
            for r in self.alive(now)
        ]

    def place(self, now: float, exclude: list[str] | None = None) -> PeerRecord | None:
        """Choose a live peer for one task and account for it until its next heartbeat."""
        chosen = choose(self._candidates(now), exclude or [])
        if chosen is None:
            return None
        self._placed[chosen.peer_id] = self._placed.get(chosen.peer_id, 0) + 1
        return self._peers[chosen.peer_id]

    def place_many(
        self, now: float, count: int, exclude: list[str] | None = None
    ) -> list[PeerRecord]:
        """``count`` successive :meth:`place` decisions at once (the candidates are read
        once: a batch of thousands costs little more than one); empty if no peer can."""
        chosen = choose_many(self._candidates(now), count, exclude or [])
        for peer_id in chosen:
            self._placed[peer_id] = self._placed.get(peer_id, 0) + 1
        return [self._peers[peer_id] for peer_id in chosen]

    def infos(self, now: float) -> list[PeerInfo]:
        return [
            PeerInfo(
                peer_id=r.peer_id,
                address=r.address,
                api_url=r.api_url,
                alive=self.is_alive(r, now),
                state="alive"
                if self.is_alive(r, now)
                else ("left" if r.state == "left" else "dead"),
                load=r.load,
                last_heartbeat=r.last_heartbeat,
                registered_at=r.registered_at,
                version=r.version,
            )
            for r in sorted(self._peers.values(), key=lambda r: r.registered_at)
        ]
