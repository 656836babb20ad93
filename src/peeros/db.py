"""SQLite storage: WAL, a schema version, forward migrations. With :mod:`peeros.db_tables`
(registries sharing one of these databases), the only modules with SQL.

Every durable registry of PeerOS lives here as a small class over one connection.
``synchronous=FULL`` because what the tracker acknowledges must survive kill -9 and
power loss alike; the write rate (one row per heartbeat) makes the cost invisible.
A peer's task history uses ``synchronous=NORMAL``: in WAL mode that still survives a
crash of the process, and only a power loss may drop the last commits, an accepted
trade for thousands of history rows per second.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")

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
    # 1 -> 2: the file index of sharing and search (issue 6)
    """
    CREATE TABLE share_files (
        peer_id TEXT NOT NULL,
        kind    TEXT NOT NULL,
        name    TEXT NOT NULL,
        size    INTEGER NOT NULL,
        sha256  TEXT NOT NULL,
        PRIMARY KEY (peer_id, kind, name)
    );
    CREATE INDEX share_files_sha256 ON share_files (sha256);
    CREATE INDEX share_files_name ON share_files (name);
    """,
    # owned files (issue 5): file -> (owner peer id, owner address, holders)
    """
    CREATE TABLE owned_files (
        owner_id       TEXT NOT NULL,
        name           TEXT NOT NULL,
        owner_address  TEXT NOT NULL,
        size           INTEGER NOT NULL,
        stored_size    INTEGER NOT NULL,
        holders_json   TEXT NOT NULL,
        replicas       INTEGER NOT NULL,
        created        REAL NOT NULL,
        PRIMARY KEY (owner_id, name)
    );
    """,
]

#: The peer's own database; same rule: entry ``i`` upgrades version ``i`` to ``i + 1``.
PEER_MIGRATIONS: list[str] = [
    """
    CREATE TABLE tasks (
        task_id         TEXT PRIMARY KEY,
        origin          TEXT NOT NULL,
        executor        TEXT,
        status          TEXT NOT NULL CHECK (status IN
                            ('QUEUED', 'RUNNING', 'DONE', 'FAILED', 'TIMED_OUT', 'CANCELLED')),
        function        TEXT NOT NULL,
        program_sha256  TEXT NOT NULL,
        priority        INTEGER NOT NULL DEFAULT 0,
        confidential    INTEGER NOT NULL DEFAULT 0,
        attempts        INTEGER NOT NULL DEFAULT 0,
        submitted_at    REAL NOT NULL,
        started_at      REAL,
        finished_at     REAL,
        execution_time  REAL,
        waiting_time    REAL,
        turnaround_time REAL,
        error           TEXT
    );
    CREATE INDEX tasks_finished_at ON tasks (finished_at);
    CREATE INDEX tasks_submitted_at ON tasks (submitted_at);
    """,
    # 1 -> 2: per-query and per-download records of sharing and search (issue 6)
    """
    CREATE TABLE share_queries (
        id      INTEGER PRIMARY KEY,
        at      REAL NOT NULL,
        query   TEXT NOT NULL,
        mode    TEXT NOT NULL,
        seconds REAL NOT NULL,
        results INTEGER NOT NULL
    );
    CREATE TABLE share_downloads (
        id            INTEGER PRIMARY KEY,
        at            REAL NOT NULL,
        name          TEXT NOT NULL,
        sha256        TEXT NOT NULL,
        bytes         INTEGER NOT NULL,
        seconds       REAL NOT NULL,
        sources       INTEGER NOT NULL,
        resumed_bytes INTEGER NOT NULL
    );
    """,
]


class Database:
    """One SQLite file with a versioned schema."""

    def __init__(self, path: Path, migrations: list[str], synchronous: str = "FULL") -> None:
        if synchronous not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {_SYNCHRONOUS}, got {synchronous!r}")
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={synchronous}")
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

    def execute_many(self, sql: str, seq: Iterable[Sequence[Any]]) -> None:
        """Run ``sql`` once per parameter tuple, all in ONE transaction (group commit)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(sql, seq)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

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


#: Columns of ``tasks`` in insert order, with the default of each optional one.
_TASK_REQUIRED = ("task_id", "origin", "status", "function", "program_sha256", "submitted_at")
_TASK_OPTIONAL: dict[str, Any] = {
    "executor": None,
    "priority": 0,
    "confidential": False,
    "attempts": 0,
    "started_at": None,
    "finished_at": None,
    "execution_time": None,
    "waiting_time": None,
    "turnaround_time": None,
    "error": None,
}
_TASK_COLUMNS = (*_TASK_REQUIRED, *_TASK_OPTIONAL)
_FINISHED = "status IN ('DONE', 'FAILED', 'TIMED_OUT', 'CANCELLED')"

_UPSERT_TASK = f"""
    INSERT INTO tasks ({", ".join(_TASK_COLUMNS)})
    VALUES ({", ".join("?" for _ in _TASK_COLUMNS)})
    ON CONFLICT(task_id) DO UPDATE SET
    {", ".join(f"{c} = excluded.{c}" for c in _TASK_COLUMNS if c != "task_id")}
"""  # noqa: S608 -- column names are constants of this module, values are bound


class PeerDB(Database):
    """A peer's durable state: the task history and audit log (SPEC §2)."""

    def __init__(self, path: Path, synchronous: str = "NORMAL") -> None:
        super().__init__(path, PEER_MIGRATIONS, synchronous=synchronous)

    def record_tasks(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert or replace many task rows in one transaction; the last row per id wins."""
        if rows:
            self.execute_many(_UPSERT_TASK, [_task_params(row) for row in rows])

    def task(self, task_id: str) -> dict[str, Any] | None:
        rows = self.execute("SELECT * FROM tasks WHERE task_id = ?", (task_id,))
        return _task_dict(rows[0]) if rows else None

    def recent(self, limit: int) -> list[dict[str, Any]]:
        """The ``limit`` most recently submitted tasks, newest first."""
        rows = self.execute(
            "SELECT * FROM tasks ORDER BY submitted_at DESC, task_id DESC LIMIT ?",
            (max(limit, 0),),
        )
        return [_task_dict(r) for r in rows]

    def stats(self, since: float | None = None) -> dict[str, Any]:
        """Counts, success rate, mean times and throughput of the task history.

        With ``since``, only tasks finished at or after it, or still unfinished and
        submitted at or after it. Means are over finished tasks that have the time;
        ``success_rate`` is done / finished; ``throughput`` is finished tasks per
        second from the first submission to the last finish among finished tasks.
        Each is 0 when undefined.
        """
        where = ""
        params: tuple[float, ...] = ()
        if since is not None:
            where = "WHERE finished_at >= ? OR (finished_at IS NULL AND submitted_at >= ?)"
            params = (since, since)
        row = self.execute(
            f"""
            SELECT COUNT(*) AS count,
                   COALESCE(SUM(status = 'QUEUED'), 0) AS queued,
                   COALESCE(SUM(status = 'RUNNING'), 0) AS running,
                   COALESCE(SUM(status = 'DONE'), 0) AS done,
                   COALESCE(SUM(status = 'FAILED'), 0) AS failed,
                   COALESCE(SUM(status = 'TIMED_OUT'), 0) AS timed_out,
                   COALESCE(SUM(status = 'CANCELLED'), 0) AS cancelled,
                   AVG(CASE WHEN {_FINISHED} THEN execution_time END) AS mean_exec,
                   AVG(CASE WHEN {_FINISHED} THEN waiting_time END) AS mean_wait,
                   AVG(CASE WHEN {_FINISHED} THEN turnaround_time END) AS mean_turn,
                   MIN(CASE WHEN {_FINISHED} THEN submitted_at END) AS first_submit,
                   MAX(CASE WHEN {_FINISHED} THEN finished_at END) AS last_finish
            FROM tasks {where}
            """,  # noqa: S608 -- only constants are formatted in; values are bound
            params,
        )[0]
        finished = row["done"] + row["failed"] + row["timed_out"] + row["cancelled"]
        span = (
            row["last_finish"] - row["first_submit"]
            if row["last_finish"] is not None and row["first_submit"] is not None
            else 0.0
        )
        return {
            "count": row["count"],
            "queued": row["queued"],
            "running": row["running"],
            "done": row["done"],
            "failed": row["failed"],
            "timed_out": row["timed_out"],
            "cancelled": row["cancelled"],
            "success_rate": row["done"] / finished if finished else 0.0,
            "mean_execution_time": row["mean_exec"] or 0.0,
            "mean_waiting_time": row["mean_wait"] or 0.0,
            "mean_turnaround_time": row["mean_turn"] or 0.0,
            "throughput": finished / span if finished and span > 0 else 0.0,
        }


def _task_params(row: dict[str, Any]) -> tuple[Any, ...]:
    missing = [c for c in _TASK_REQUIRED if row.get(c) is None]
    if missing:
        raise ValueError(f"task row {row.get('task_id')!r} lacks {', '.join(missing)}")
    values = [row[c] for c in _TASK_REQUIRED]
    values += [row.get(c, default) for c, default in _TASK_OPTIONAL.items()]
    return tuple(int(v) if isinstance(v, bool) else v for v in values)


def _task_dict(row: sqlite3.Row) -> dict[str, Any]:
    out = {key: row[key] for key in row.keys()}  # noqa: SIM118 -- sqlite3.Row is not a dict
    out["confidential"] = bool(out["confidential"])
    return out
