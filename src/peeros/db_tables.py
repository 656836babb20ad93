"""The registries that live in another registry's database: the tracker's share index
and owned-file registry, a peer's share statistics. Thin classes over a
:class:`~peeros.db.Database` connection; with :mod:`peeros.db`, the only SQL in PeerOS."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from peeros.db import PeerDB, TrackerDB

# --- sharing and search (issue 6): thin classes over the tracker's and a peer's DB ---


class ShareIndexDB:
    """The tracker's file index: which peer shares which file."""

    def __init__(self, db: TrackerDB) -> None:
        self.db = db

    def replace(self, peer_id: str, files: Sequence[tuple[str, str, int, str]]) -> None:
        """Make ``files`` ((kind, name, size, sha256) each) the whole list of ``peer_id``."""
        with self.db._lock:
            conn = self.db._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM share_files WHERE peer_id = ?", (peer_id,))
                conn.executemany(
                    "INSERT OR REPLACE INTO share_files (peer_id, kind, name, size, sha256) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [(peer_id, *f) for f in files],
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def find(self, mode: str, value: str) -> list[dict[str, Any]]:
        """Rows whose name matches ``value`` (exact, substring or glob) or whose sha256 is it."""
        where = {
            "exact": "name = ?",
            "substring": "instr(lower(name), lower(?)) > 0",
            "glob": "name GLOB ?",
            "sha256": "sha256 = ?",
        }[mode]
        rows = self.db.execute(
            f"SELECT peer_id, kind, name, size, sha256 FROM share_files WHERE {where} "  # noqa: S608
            "ORDER BY name, sha256, peer_id LIMIT 10000",
            (value,),
        )
        return [dict(r) for r in rows]

    def all(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT peer_id, kind, name, size, sha256 FROM share_files")
        return [dict(r) for r in rows]


class ShareStatsDB:
    """A peer's per-query and per-download records."""

    def __init__(self, db: PeerDB) -> None:
        self.db = db

    def add_query(self, at: float, query: str, mode: str, seconds: float, results: int) -> None:
        self.db.execute(
            "INSERT INTO share_queries (at, query, mode, seconds, results) VALUES (?, ?, ?, ?, ?)",
            (at, query, mode, seconds, results),
        )

    def add_download(self, rec: dict[str, Any]) -> None:
        cols = ("at", "name", "sha256", "bytes", "seconds", "sources", "resumed_bytes")
        self.db.execute(
            f"INSERT INTO share_downloads ({', '.join(cols)}) VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
            tuple(rec[c] for c in cols),
        )

    def queries(self, limit: int) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM share_queries ORDER BY id DESC LIMIT ?", (limit,))
        return [dict(r) for r in rows]

    def downloads(self, limit: int) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM share_downloads ORDER BY id DESC LIMIT ?", (limit,))
        return [dict(r) for r in rows]


# --- owned files (issue 5): the tracker's registry of who holds whose ciphertext ---


class OwnedFilesDB:
    """``file -> (owner peer id, owner address, holders, sizes, created)`` on the tracker."""

    def __init__(self, db: TrackerDB) -> None:
        self.db = db

    def upsert(self, rec: dict[str, Any]) -> None:
        self.db.execute(
            """
            INSERT INTO owned_files (owner_id, name, owner_address, size, stored_size,
                                     holders_json, replicas, created)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(owner_id, name) DO UPDATE SET
                owner_address = excluded.owner_address, size = excluded.size,
                stored_size = excluded.stored_size, holders_json = excluded.holders_json,
                replicas = excluded.replicas, created = excluded.created
            """,
            (
                rec["owner_id"],
                rec["name"],
                rec["owner_address"],
                rec["size"],
                rec["stored_size"],
                json.dumps(rec["holders"]),
                rec["replicas"],
                rec["created"],
            ),
        )

    def load(self, owner_id: str | None = None) -> list[dict[str, Any]]:
        """Records of one owner (or of all), by owner then name."""
        where, params = ("WHERE owner_id = ?", (owner_id,)) if owner_id else ("", ())
        rows = self.db.execute(
            f"SELECT * FROM owned_files {where} ORDER BY owner_id, name",  # noqa: S608
            params,
        )
        return [
            {
                **{k: r[k] for k in ("owner_id", "name", "owner_address", "size", "stored_size")},
                "holders": json.loads(r["holders_json"]),
                "replicas": r["replicas"],
                "created": r["created"],
            }
            for r in rows
        ]

    def delete(self, owner_id: str, name: str) -> None:
        self.db.execute("DELETE FROM owned_files WHERE owner_id = ? AND name = ?", (owner_id, name))

    def set_owner_address(self, owner_id: str, address: str) -> None:
        self.db.execute(
            "UPDATE owned_files SET owner_address = ? WHERE owner_id = ?", (address, owner_id)
        )
