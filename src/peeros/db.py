"""SQLite storage: WAL, a schema version, forward migrations. The only module with SQL.

Every durable registry of PeerOS lives here as a small class over one connection.
``synchronous=FULL`` because what the tracker acknowledges must survive kill -9 and
power loss alike; the write rate (one row per heartbeat) makes the cost invisible.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

#: Each entry upgrades the schema from version ``i`` to ``i + 1``.
TRACKER_MIGRATIONS: list[str] = [
    """
    CREATE TABLE peers (
        peer_id        TEXT PRIMARY KEY,
        address        TEXT NOT NULL,
        api_url        TEXT,
        load_json      TEXT NOT NULL,
        last_heartbeat REAL NOT NULL,
        registered_at  REAL NOT NULL,
        state          TEXT NOT NULL CHECK (state IN ('alive', 'dead', 'left')),
        version        TEXT NOT NULL DEFAULT ''
    );
    """,
]


class Database:
    """One SQLite file with a versioned schema."""

    def __init__(self, path: Path, migrations: list[str]) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._migrate(migrations)

    @property
    def schema_version(self) -> int:
        row = self._conn.execute("PRAGMA user_version").fetchone()
        return int(row[0])

    def _migrate(self, migrations: list[str]) -> None:
        current = self.schema_version
        if current > len(migrations):
            raise RuntimeError(
                f"{self.path} has schema version {current}, newer than this PeerOS "
                f"({len(migrations)}); upgrade PeerOS"
            )
        for version in range(current, len(migrations)):
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in migrations[version].split(";"):
                        if statement.strip():
                            self._conn.execute(statement)
                    self._conn.execute(f"PRAGMA user_version = {version + 1}")
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class TrackerDB(Database):
    """The tracker's durable state: the peer registry (and later, file registries)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, TRACKER_MIGRATIONS)

    def upsert_peer(self, rec: dict[str, Any]) -> None:
        self.execute(
            """
            INSERT INTO peers (peer_id, address, api_url, load_json, last_heartbeat,
                               registered_at, state, version)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(peer_id) DO UPDATE SET
                address = excluded.address, api_url = excluded.api_url,
                load_json = excluded.load_json, last_heartbeat = excluded.last_heartbeat,
                state = excluded.state, version = excluded.version
            """,
            (
                rec["peer_id"],
                rec["address"],
                rec["api_url"],
                json.dumps(rec["load"]),
                rec["last_heartbeat"],
                rec["registered_at"],
                rec["state"],
                rec["version"],
            ),
        )

    def set_peer_state(self, peer_id: str, state: str) -> None:
        self.execute("UPDATE peers SET state = ? WHERE peer_id = ?", (state, peer_id))

    def load_peers(self) -> list[dict[str, Any]]:
        rows = self.execute("SELECT * FROM peers ORDER BY registered_at")
        return [
            {
                "peer_id": r["peer_id"],
                "address": r["address"],
                "api_url": r["api_url"],
                "load": json.loads(r["load_json"]),
                "last_heartbeat": r["last_heartbeat"],
                "registered_at": r["registered_at"],
                "state": r["state"],
                "version": r["version"],
            }
            for r in rows
        ]
