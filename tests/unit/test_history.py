"""Task history in SQLite: group commits, restarts, exact statistics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from peeros.compute.history import TaskHistory
from peeros.db import PEER_MIGRATIONS, PeerDB, TrackerDB


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def row(
    task_id: str, status: str = "QUEUED", submitted_at: float = 0.0, **kw: Any
) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "origin": "peer-a",
        "status": status,
        "function": "main",
        "program_sha256": "0" * 64,
        "submitted_at": submitted_at,
        **kw,
    }


def done(
    task_id: str, submitted: float, started: float, finished: float, status: str = "DONE"
) -> dict[str, Any]:
    return row(
        task_id,
        status,
        submitted,
        executor="peer-b",
        attempts=1,
        started_at=started,
        finished_at=finished,
        execution_time=finished - started,
        waiting_time=started - submitted,
        turnaround_time=finished - submitted,
    )


@pytest.fixture
def db(tmp_path: Path) -> Iterator[PeerDB]:
    database = PeerDB(tmp_path / "peer.db")
    yield database
    database.close()


def test_schema_and_synchronous_mode(tmp_path: Path, db: PeerDB) -> None:
    assert db.schema_version == len(PEER_MIGRATIONS)
    assert db.execute("PRAGMA synchronous")[0][0] == 1  # NORMAL
    tracker = TrackerDB(tmp_path / "tracker.db")
    assert tracker.execute("PRAGMA synchronous")[0][0] == 2  # FULL, unchanged
    tracker.close()
    with pytest.raises(ValueError, match="synchronous"):
        PeerDB(tmp_path / "x.db", synchronous="SOMETIMES")


def test_latest_row_per_task_wins(db: PeerDB) -> None:
    history = TaskHistory(db, clock=FakeClock())
    history.record(row("t1", "QUEUED", priority=5, confidential=True))
    history.record(row("t1", "RUNNING", priority=5, confidential=True, started_at=1.0))
    assert history.pending == 1
    assert history.flush() == 1
    history.record(done("t1", 0.0, 1.0, 3.0))
    history.flush()
    stored = history.task("t1")
    assert stored is not None
    assert (stored["status"], stored["executor"], stored["attempts"]) == ("DONE", "peer-b", 1)
    assert stored["execution_time"] == 2.0 and stored["error"] is None
    assert stored["confidential"] is False  # the latest row replaced every column
    assert history.task("nope") is None


def test_record_flushes_itself_when_overdue(db: PeerDB) -> None:
    clock = FakeClock()
    history = TaskHistory(db, flush_every=0.2, clock=clock)
    history.record(done("t1", 0.0, 0.0, 0.1))
    assert history.pending == 1 and db.task("t1") is None
    clock.now = 0.2
    history.record(done("t2", 0.0, 0.1, 0.2))
    assert history.pending == 0 and db.task("t1") is not None


def test_passing_states_are_written_only_once_they_last(db: PeerDB) -> None:
    """A task that ends quickly is written once (its final row), not three times."""
    clock = FakeClock()
    history = TaskHistory(db, flush_every=0.2, clock=clock, settle_after=1.0)
    history.record(row("quick"))
    history.record(row("slow"))
    clock.now = 0.5
    history.record(row("quick", "RUNNING"))
    assert history.flush_settled() == 0  # nothing final, nothing old enough
    history.record(done("quick", 0.0, 0.5, 0.6))
    assert history.flush_settled() == 1 and db.task("slow") is None
    assert db.task("quick")["status"] == "DONE"  # type: ignore[index]
    clock.now = 1.0
    assert history.flush_settled() == 1  # "slow" has been QUEUED for 1 s: now it shows
    assert db.task("slow")["status"] == "QUEUED"  # type: ignore[index]
    assert history.pending == 0


def test_history_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "peer.db"
    first = PeerDB(path)
    history = TaskHistory(first, clock=FakeClock())
    history.record(done("t1", 0.0, 1.0, 2.0))
    history.record(row("t2", "FAILED", 1.0, error="Traceback ...\nZeroDivisionError"))
    history.close()  # the peer flushes on shutdown
    first.close()
    second = PeerDB(path)
    assert [r["task_id"] for r in second.recent(10)] == ["t2", "t1"]
    t2 = second.task("t2")
    assert t2 is not None and t2["error"].endswith("ZeroDivisionError")
    second.close()


def test_recent_is_newest_first_and_limited(db: PeerDB) -> None:
    history = TaskHistory(db, clock=FakeClock())
    for i in range(5):
        history.record(row(f"t{i}", submitted_at=float(i)))
    assert [r["task_id"] for r in history.recent(3)] == ["t4", "t3", "t2"]
    assert history.recent(0) == []


def test_ten_thousand_rows_in_well_under_a_second(db: PeerDB) -> None:
    history = TaskHistory(db, flush_every=3600.0, clock=FakeClock())
    start = time.perf_counter()
    for i in range(10_000):
        history.record(done(f"t{i:05d}", float(i), i + 0.5, i + 1.0))
    history.flush()
    elapsed = time.perf_counter() - start
    assert db.stats()["done"] == 10_000
    assert elapsed < 1.0, f"10,000 rows took {elapsed:.2f}s"


def test_stats_are_exact(db: PeerDB) -> None:
    db.record_tasks(
        [
            done("a", 0.0, 1.0, 3.0),  # exec 2, wait 1, turnaround 3
            done("b", 1.0, 2.0, 6.0),  # exec 4, wait 1, turnaround 5
            done("c", 2.0, 5.0, 6.0, status="FAILED"),  # exec 1, wait 3, turnaround 4
            row("d", "TIMED_OUT", 3.0, finished_at=10.0, turnaround_time=7.0),
            row("e", "CANCELLED", 4.0, finished_at=5.0),
            row("f", "RUNNING", 5.0, started_at=6.0, waiting_time=1.0),  # not finished
            row("g", "QUEUED", 6.0),
        ]
    )
    stats = db.stats()
    assert stats == {
        "count": 7,
        "queued": 1,
        "running": 1,
        "done": 2,
        "failed": 1,
        "timed_out": 1,
        "cancelled": 1,
        "success_rate": 2 / 5,
        "mean_execution_time": (2 + 4 + 1) / 3,
        "mean_waiting_time": (1 + 1 + 3) / 3,
        "mean_turnaround_time": (3 + 5 + 4 + 7) / 4,
        "throughput": 5 / (10.0 - 0.0),
    }
    recent = db.stats(since=6.0)  # finished at >= 6 (b, c, d) or unfinished since 6 (g)
    assert (recent["count"], recent["done"], recent["failed"]) == (4, 1, 1)
    assert recent["throughput"] == 3 / (10.0 - 1.0)


def test_stats_when_empty_are_zero(db: PeerDB) -> None:
    history = TaskHistory(db, clock=FakeClock())
    stats = history.stats()
    assert stats["count"] == 0
    assert stats["success_rate"] == stats["throughput"] == stats["mean_execution_time"] == 0.0


def test_bad_row_is_refused_and_buffer_kept(db: PeerDB) -> None:
    history = TaskHistory(db, clock=FakeClock())
    history.record({"task_id": "x", "status": "DONE"})
    with pytest.raises(ValueError, match="lacks origin, function, program_sha256, submitted_at"):
        history.flush()
    assert history.pending == 1  # nothing lost, nothing half-written
    assert db.recent(10) == []


def test_rows_recorded_later_are_built_only_when_written(db: PeerDB) -> None:
    """``record_later``: a passing state that a later one replaces before the flush is
    never built; the row that is written is built at the flush."""
    history = TaskHistory(db, clock=FakeClock())
    built: list[str] = []

    def build(status: str, **kw: Any) -> Any:
        def make() -> dict[str, Any]:
            built.append(status)
            return row("t1", status, **kw)

        return make

    history.record_later("t1", "QUEUED", build("QUEUED"))
    history.record_later("t1", "RUNNING", build("RUNNING", executor="peer-b"))
    history.record_later("t1", "DONE", build("DONE", executor="peer-b", finished_at=2.0))
    assert built == []  # nothing built on the task's way
    assert history.flush_settled() == 1
    assert built == ["DONE"]
    stored = history.task("t1")
    assert stored is not None and (stored["status"], stored["finished_at"]) == ("DONE", 2.0)


def test_a_failed_write_on_the_tasks_way_is_kept_for_the_next_flush(db: PeerDB) -> None:
    """A flush that ``record`` does by itself and that fails (a full disk, say) does not
    raise into the task's way: the rows stay buffered and the next flush writes them."""
    clock = FakeClock()
    history = TaskHistory(db, clock=clock, flush_every=0.2)
    real = db.record_tasks
    failures: list[int] = []

    def failing(rows: Any) -> None:
        failures.append(len(rows))
        raise OSError("database or disk is full")

    db.record_tasks = failing  # type: ignore[method-assign]
    history.record(done("t1", 0.0, 1.0, 2.0))
    clock.now = 1.0
    history.record(done("t2", 0.0, 1.0, 2.0))  # overdue: flushes, fails, does not raise
    assert failures == [2] and history.pending == 2
    db.record_tasks = real  # type: ignore[method-assign]
    assert history.flush() == 2
    assert {r["task_id"] for r in history.recent(10)} == {"t1", "t2"}
