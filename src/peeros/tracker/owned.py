"""The tracker's registry of owned files: who owns what, and which peers hold it.

One method per operation, called by :mod:`peeros.tracker.owned_routes`. The caller's
peer id comes from its mutual-TLS certificate, so an owner only ever allocates,
records and lists its own files; locating for a download and deleting also need the
owner's signature (:mod:`peeros.security.owner_auth`). Every change is in SQLite
before it is acknowledged, so a tracker killed with -9 forgets nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from peeros.db import TrackerDB
from peeros.db_tables import OwnedFilesDB
from peeros.errors import Conflict, NotFound, Unavailable
from peeros.files.local import check_filename_or_400
from peeros.protocol import (
    OwnedAllocate,
    OwnedBadCopy,
    OwnedCommit,
    OwnedHolder,
    OwnedHolders,
    OwnedList,
    OwnedRecord,
    OwnedReplicate,
    OwnerAuth,
)
from peeros.security.owner_auth import ReplayGuard
from peeros.tracker.registry import Registry
from peeros.tracker.replication import CopyInstruction, OwnedFile, choose_holders, plan

log = logging.getLogger(__name__)

__all__ = ["OwnedRegistry"]


class OwnedRegistry:
    def __init__(
        self, db: TrackerDB, registry: Registry, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = OwnedFilesDB(db)
        self.registry = registry
        self.clock = clock
        self.guard = ReplayGuard()

    def _holder(self, peer_id: str, now: float) -> OwnedHolder:
        rec = self.registry.get(peer_id)
        alive = any(r.peer_id == peer_id for r in self.registry.alive(now))
        return OwnedHolder(peer_id=peer_id, address=rec.address if rec else "", alive=alive)

    def _record(self, row: dict[str, Any], now: float) -> OwnedRecord:
        holders = [self._holder(str(h), now) for h in row["holders"]]
        return OwnedRecord.model_validate({**row, "holders": holders})

    def _address_of(self, peer_id: str) -> str:
        rec = self.registry.get(peer_id)
        return rec.address if rec is not None else ""

    def allocate(self, owner_id: str, req: OwnedAllocate) -> OwnedHolders:
        """Distinct live holders for a new file, never the owner; 503 if too few."""
        check_filename_or_400(req.name)
        if any(r["name"] == req.name for r in self.db.load(owner_id)):
            raise Conflict(f"owned file {req.name!r} already exists; delete it first")
        now = self.clock()
        live = [r.peer_id for r in self.registry.alive(now)]
        load = _load(self.db.load())
        chosen = choose_holders(live, {owner_id}, req.replicas, load)
        if len(chosen) < req.replicas:
            raise Unavailable(
                f"{req.replicas} replicas need {req.replicas} live peers besides the owner; "
                f"only {len(chosen)} are alive"
            )
        return OwnedHolders(holders=[self._holder(p, now) for p in chosen])

    def commit(self, owner_id: str, req: OwnedCommit) -> OwnedRecord:
        """Record that ``req.holders`` now hold the owner's file."""
        check_filename_or_400(req.name)
        row = {
            "owner_id": owner_id,
            "name": req.name,
            "owner_address": self._address_of(owner_id),
            "size": req.size,
            "stored_size": req.stored_size,
            "holders": list(req.holders),
            "replicas": len(req.holders),
            "created": req.created,
        }
        self.db.upsert(row)
        log.info("owned file %r of %s held by %s", req.name, owner_id, ", ".join(req.holders))
        return self._record(row, self.clock())

    def files_of(self, owner_id: str) -> OwnedList:
        """The caller's own files (the owner's address is refreshed on the way)."""
        address = self._address_of(owner_id)
        if address:
            self.db.set_owner_address(owner_id, address)
        now = self.clock()
        return OwnedList(files=[self._record(r, now) for r in self.db.load(owner_id)])

    def _find(self, owner_id: str, name: str) -> dict[str, Any]:
        for row in self.db.load(owner_id):
            if row["name"] == name:
                return row
        raise NotFound(f"owner {owner_id} has no owned file {name!r}")

    def locate(self, owner_id: str, auth: OwnerAuth) -> OwnedRecord:
        """The record of a file, for its owner's signed download."""
        self.guard.admit(auth, "download", owner_id, auth.name, self.clock())
        return self._record(self._find(owner_id, auth.name), self.clock())

    def delete(self, owner_id: str, auth: OwnerAuth) -> OwnedRecord:
        """Forget a file, for its owner's signed delete; returns what it was."""
        self.guard.admit(auth, "delete", owner_id, auth.name, self.clock())
        row = self._find(owner_id, auth.name)
        self.db.delete(owner_id, auth.name)
        log.info("owned file %r of %s deleted", auth.name, owner_id)
        return self._record(row, self.clock())

    def mark_bad(self, owner_id: str, req: OwnedBadCopy) -> OwnedRecord:
        """Drop a holder whose copy failed authentication (the owner found it); the
        repair loop then restores the replica count from a good copy."""
        row = self._find(owner_id, req.name)
        row["holders"] = [h for h in row["holders"] if h != req.holder]
        self.db.upsert(row)
        log.warning("copy of %r of %s on %s is bad: dropped", req.name, owner_id, req.holder)
        return self._record(row, self.clock())

    def repairs(self, factor: int = 2) -> list[CopyInstruction]:
        """Copies that restore each file's replica count on live peers (pure planner)."""
        live = [r.peer_id for r in self.registry.alive(self.clock())]
        return plan(_files(self.db.load()), live, factor)

    def replicate_request(self, instr: CopyInstruction) -> tuple[str, OwnedReplicate] | None:
        """(source address, request) for one copy, or None if a peer is gone meanwhile."""
        now = self.clock()
        source, target = self._holder(instr.source, now), self._holder(instr.target, now)
        if not (source.alive and target.alive):
            return None
        return source.address, OwnedReplicate(
            owner_id=instr.owner_id, name=instr.name, target=target
        )

    def copied(self, instr: CopyInstruction) -> None:
        """Record a finished copy: live holders plus the new one (dead ones are dropped)."""
        try:
            row = self._find(instr.owner_id, instr.name)
        except NotFound:
            return  # deleted while copying; the orphan copy is harmless ciphertext
        live = {r.peer_id for r in self.registry.alive(self.clock())}
        row["holders"] = [h for h in row["holders"] if h in live and h != instr.target]
        row["holders"].append(instr.target)
        self.db.upsert(row)
        log.info("re-replicated %r of %s onto %s", instr.name, instr.owner_id, instr.target)


def _files(rows: list[dict[str, Any]]) -> list[OwnedFile]:
    return [
        OwnedFile(str(r["owner_id"]), str(r["name"]), tuple(r["holders"]), int(r["replicas"]))
        for r in rows
    ]


def _load(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in _files(rows):
        for h in f.holders:
            counts[h] = counts.get(h, 0) + 1
    return counts
