"""CPU tasks: PeerOS against Dask, Ray and ProcessPoolExecutor, in one run (issue 3).

    .venv/bin/python bench/tasks.py [--runs 3] [--quick] [--systems peeros,dask,ray,process_pool]

Measures (a) the round trip of one trivial task, (b) tasks/s for N trivial tasks,
(c) the parallel efficiency of N tasks of 10 ms of CPU on 2 worker slots and (d) the time
from starting a cluster to its first result, then writes ``bench/results/tasks.json``
(schema: ``bench/resultlib.py``) and regenerates ``docs/performance.md`` with
``bench/report.py``.

Each run measures every system in a child process of its own (so one system's threads,
caches and leftovers never weigh on another, and a hung system is killed on a deadline);
the order of the systems rotates from run to run. Every cluster is torn down in a
``finally`` block of the child; the parent kills the child's process group, and any
PeerOS node the child recorded, if the child overstays its deadline. No fixed ports:
PeerOS and Dask bind port 0, Ray picks its own free ports.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import resultlib

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_OUT = HERE / "results" / "tasks.json"

SYSTEMS = {
    "peeros": "PeerOS",
    "dask": "Dask",
    "ray": "Ray",
    "process_pool": "ProcessPoolExecutor",
}
BASELINES = ["dask", "ray", "process_pool"]
#: Distribution that must be importable for each system.
DISTRIBUTIONS = {
    "peeros": ("peeros", "peeros"),
    "dask": ("distributed", "distributed"),
    "ray": ("ray", "ray"),
    "process_pool": (None, None),
}

#: HTTP timeout of the PeerOS client. ``peeros.connect()`` uses 30 s, the same as the
#: server-side long poll of ``Client.results()`` (``wait(timeout=30)``): on a loaded machine
#: the poll's answer arrives just after the client gave up, and a batch that takes longer
#: than 30 s fails with ``Unavailable`` (seen in an earlier full run). A longer client
#: timeout sidesteps that race without changing what is measured.
CLIENT_TIMEOUT = 120.0

TRIVIAL_PROGRAM = "def main(x):\n    return x\n"
BUSY_PROGRAM = (
    "import time\n"
    "def main(ms):\n"
    "    end = time.thread_time() + ms / 1000\n"
    "    while time.thread_time() < end:\n"
    "        pass\n"
    "    return ms\n"
)


# --- the task functions (module level: ProcessPoolExecutor pickles them by reference) ---


def trivial(x: Any) -> Any:
    return x


def busy(ms: float) -> float:
    """Spin for ``ms`` milliseconds of this thread's CPU time (not wall time: a task the
    OS preempts still does its full 10 ms of work)."""
    end = time.thread_time() + ms / 1000
    while time.thread_time() < end:
        pass
    return ms


# --- helpers ---------------------------------------------------------------------------


def ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def sample_round_trips(fn: Callable[[], Any], n: int, warmup: int) -> list[float]:
    """``n`` round trips of ``fn()`` in milliseconds, after ``warmup`` unrecorded ones."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(ms_since(t0))
    return samples


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def efficiency_percent(n: int, task_ms: float, slots: int, wall_s: float) -> float:
    return 100.0 * (n * task_ms / 1000 / slots) / wall_s


def expect(got: Any, want: Any, what: str) -> None:
    if got != want:
        raise AssertionError(f"{what}: wrong results (got {str(got)[:200]})")


class Measured:
    """What one child measures: figures per section and row, raw samples, errors."""

    def __init__(self, system: str) -> None:
        self.system = system
        self.values: dict[str, dict[str, float | None]] = {}
        self.raw: dict[str, Any] = {}
        self.errors: list[str] = []
        self.info: dict[str, Any] = {}

    def put(self, section: str, key: str, value: float | None) -> None:
        self.values.setdefault(section, {})[key] = value

    @contextlib.contextmanager
    def phase(self, name: str) -> Any:
        """Record a failing phase and go on with the next one."""
        t0 = time.perf_counter()
        try:
            yield
        except Exception as exc:
            self.errors.append(f"{self.system} {name}: {type(exc).__name__}: {exc}"[:2000])
            print(f"    {self.system} {name} FAILED: {exc!r}"[:500], file=sys.stderr)
        else:
            print(f"    {self.system} {name} ok ({time.perf_counter() - t0:.1f}s)", file=sys.stderr)

    def as_json(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "values": self.values,
            "raw": self.raw,
            "errors": self.errors,
            "info": self.info,
        }


# --- PeerOS ----------------------------------------------------------------------------


def _record_pids(pid_file: Path | None, cluster: Any) -> None:
    """Tell the parent which node processes to kill if this child is killed."""
    if pid_file is None:
        return
    pids = [node.pid for node in cluster.nodes()]
    known = json.loads(pid_file.read_text()) if pid_file.exists() else []
    pid_file.write_text(json.dumps(known + pids))


def measure_peeros(m: Measured, cfg: dict[str, Any], work: Path, pid_file: Path | None) -> None:
    import peeros
    from peeros.launcher import LocalCluster
    from peeros.protocol import TaskRequest

    n, n_rt, warm = cfg["n_tasks"], cfg["samples"], cfg["warmup"]

    cluster = LocalCluster(work / "up")
    try:
        # (d) `peeros up` (tracker + 3 peers) to the first result, placed by the tracker.
        t0 = time.perf_counter()
        cluster.start(cfg["peers"])
        started_s = time.perf_counter() - t0
        _record_pids(pid_file, cluster)
        with peeros.Client(data_dir=cluster.data_dir, timeout=CLIENT_TIMEOUT) as client:
            first = client.run_program(TRIVIAL_PROGRAM, "main", [1])
            first_s = time.perf_counter() - t0
            expect((first.status, first.result), ("DONE", 1), "first task")
            m.put("d", "peeros/up", first_s)
            m.put("d", "peeros/up-start", started_s)
            origin = client.status().peer_id
            m.info["origin"] = origin
            m.info["sandboxed"] = client.sched().sandboxed
            m.info["peers"] = [p.peer_id for p in client.peers()]

            def round_trips(**options: Any) -> tuple[list[float], list[str | None], list[Any]]:
                for _ in range(warm):
                    client.run_program(TRIVIAL_PROGRAM, "main", [1], **options)
                samples: list[float] = []
                where: list[str | None] = []
                turnaround: list[float | None] = []
                for _ in range(n_rt):
                    t1 = time.perf_counter()
                    res = client.run_program(TRIVIAL_PROGRAM, "main", [1], **options)
                    samples.append(ms_since(t1))
                    expect((res.status, res.result), ("DONE", 1), "run_program")
                    where.append(res.peer_id)
                    turnaround.append(res.turnaround_time)
                return samples, where, turnaround

            with m.phase("a run_program elsewhere"):
                # Placed by the tracker on another peer than the client's (every sample).
                other, where, _ = round_trips(elsewhere=True)
                expect(origin in where, False, "elsewhere tasks ran on another peer")
                m.put("a", "peeros/run_program-other", statistics.median(other))
                m.raw["a_run_program_elsewhere"] = {
                    "samples_ms": other,
                    "executors": sorted({str(p) for p in where}),
                }
            with m.phase("a run_program"):
                samples, where, turnaround = round_trips()
                same = [s for s, p in zip(samples, where, strict=True) if p == origin]
                m.put("a", "peeros/run_program-all", statistics.median(samples))
                m.raw["a_run_program"] = {
                    "samples_ms": samples,
                    "ran_on_other_peer": [p != origin for p in where],
                    "n_other": len(samples) - len(same),
                    "n_same": len(same),
                    "median_same_ms": statistics.median(same) if same else None,
                    "median_turnaround_ms": 1000
                    * statistics.median([t for t in turnaround if t is not None] or [0.0]),
                }
            with m.phase("a call"):
                samples = sample_round_trips(
                    lambda: expect(client.call(trivial, 1), 1, "call"), n_rt, warm
                )
                m.put("a", "peeros/call", statistics.median(samples))
                m.raw["a_call"] = {"samples_ms": samples}

            # (b) n trivial tasks: callables by map, then program tasks by the batch API.
            with m.phase("b map"):
                wall, out = timed(lambda: client.map(trivial, range(n)))
                expect(out, list(range(n)), "map")
                m.put("b", "peeros/map", n / wall)
                m.raw["b_map_wall_s"] = wall
            with m.phase("b batch"):

                def batch() -> list[Any]:
                    reqs = [
                        TaskRequest(program=TRIVIAL_PROGRAM, function="main", args=[i])
                        for i in range(n)
                    ]
                    return client.results(client.submit_requests(reqs))

                wall, results = timed(batch)
                expect([r.result for r in results], list(range(n)), "batch")
                m.put("b", "peeros/batch", n / wall)
                m.raw["b_batch_wall_s"] = wall
                placed: dict[str, int] = {}
                for r in results:
                    placed[str(r.peer_id)] = placed.get(str(r.peer_id), 0) + 1
                m.raw["b_batch_placement"] = placed
    finally:
        cluster.stop()

    # (c) one peer with 2 worker slots, n tasks of busy_ms of CPU each.
    ms, slots, n_busy = cfg["busy_ms"], 2, cfg["n_busy"]
    cluster = LocalCluster(work / "slots2")
    try:
        cluster.start(1, peer_extra=["--slots", str(slots)])
        _record_pids(pid_file, cluster)
        with peeros.Client(data_dir=cluster.data_dir, timeout=CLIENT_TIMEOUT) as client:
            m.info["slots_peer"] = client.sched().slots
            client.map(trivial, range(4 * slots))  # start the workers
            with m.phase("c map"):
                wall, out = timed(lambda: client.map(busy, [ms] * n_busy))
                expect(out, [ms] * n_busy, "busy map")
                m.put("c", "peeros/map", efficiency_percent(n_busy, ms, slots, wall))
                m.raw["c_map_wall_s"] = wall
            with m.phase("c batch"):

                def busy_batch() -> list[Any]:
                    req = TaskRequest(program=BUSY_PROGRAM, function="main", args=[ms])
                    return client.results(client.submit_requests([req] * n_busy))

                wall, results = timed(busy_batch)
                expect([r.result for r in results], [ms] * n_busy, "busy batch")
                m.put("c", "peeros/batch", efficiency_percent(n_busy, ms, slots, wall))
                m.raw["c_batch_wall_s"] = wall
                execs = [r.execution_time for r in results if r.execution_time is not None]
                m.raw["c_batch_median_execution_ms"] = 1000 * statistics.median(execs or [0.0])
    finally:
        cluster.stop()


# --- the baselines ---------------------------------------------------------------------


def measure_dask(m: Measured, cfg: dict[str, Any], work: Path, pid_file: Path | None) -> None:
    from distributed import Client, LocalCluster

    n, n_rt, warm, ms = cfg["n_tasks"], cfg["samples"], cfg["warmup"], cfg["busy_ms"]
    t0 = time.perf_counter()
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        local_directory=str(work),
    )
    try:
        with Client(cluster) as client:
            # pure=False everywhere: Dask would otherwise reuse the result of an identical
            # earlier call (same key) and skip the work.
            expect(client.submit(trivial, 1, pure=False).result(), 1, "first")
            m.put("d", "dask/start", time.perf_counter() - t0)
            with m.phase("a"):
                samples = sample_round_trips(
                    lambda: client.submit(trivial, 1, pure=False).result(timeout=60), n_rt, warm
                )
                m.put("a", "dask/submit", statistics.median(samples))
                m.raw["a_samples_ms"] = samples
            with m.phase("b"):
                wall, out = timed(lambda: client.gather(client.map(trivial, range(n), pure=False)))
                expect(out, list(range(n)), "map")
                m.put("b", "dask/map", n / wall)
            with m.phase("c"):
                wall, out = timed(
                    lambda: client.gather(client.map(busy, [ms] * cfg["n_busy"], pure=False))
                )
                expect(out, [ms] * cfg["n_busy"], "busy map")
                m.put("c", "dask/map", efficiency_percent(cfg["n_busy"], ms, 2, wall))
                m.raw["c_wall_s"] = wall
    finally:
        cluster.close(timeout=30)


def measure_ray(m: Measured, cfg: dict[str, Any], work: Path, pid_file: Path | None) -> None:
    import ray

    n, n_rt, warm, ms = cfg["n_tasks"], cfg["samples"], cfg["warmup"], cfg["busy_ms"]
    t0 = time.perf_counter()
    try:
        # The dashboard is off: it only costs CPU here, and a faster Ray is a harder target.
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        f = ray.remote(trivial)
        b = ray.remote(busy)
        expect(ray.get(f.remote(1), timeout=120), 1, "first")
        m.put("d", "ray/start", time.perf_counter() - t0)
        with m.phase("a"):
            samples = sample_round_trips(lambda: ray.get(f.remote(1), timeout=60), n_rt, warm)
            m.put("a", "ray/remote", statistics.median(samples))
            m.raw["a_samples_ms"] = samples
        with m.phase("b"):
            wall, out = timed(lambda: ray.get([f.remote(i) for i in range(n)], timeout=600))
            expect(out, list(range(n)), "map")
            m.put("b", "ray/remote", n / wall)
        with m.phase("c"):
            n_busy = cfg["n_busy"]
            wall, out = timed(lambda: ray.get([b.remote(ms) for _ in range(n_busy)], timeout=900))
            expect(out, [ms] * n_busy, "busy")
            m.put("c", "ray/remote", efficiency_percent(n_busy, ms, 2, wall))
            m.raw["c_wall_s"] = wall
    finally:
        ray.shutdown()


def measure_process_pool(
    m: Measured, cfg: dict[str, Any], work: Path, pid_file: Path | None
) -> None:
    from concurrent.futures import ProcessPoolExecutor

    n, n_rt, warm, ms = cfg["n_tasks"], cfg["samples"], cfg["warmup"], cfg["busy_ms"]
    t0 = time.perf_counter()
    ex = ProcessPoolExecutor(2)
    try:
        expect(ex.submit(trivial, 1).result(timeout=60), 1, "first")
        m.put("d", "process_pool/start", time.perf_counter() - t0)
        with m.phase("a"):
            samples = sample_round_trips(
                lambda: ex.submit(trivial, 1).result(timeout=60), n_rt, warm
            )
            m.put("a", "process_pool/submit", statistics.median(samples))
            m.raw["a_samples_ms"] = samples
        with m.phase("b"):
            wall, out = timed(lambda: list(ex.map(trivial, range(n), chunksize=1)))
            expect(out, list(range(n)), "map")
            m.put("b", "process_pool/map", n / wall)
        with m.phase("c"):
            n_busy = cfg["n_busy"]
            wall, out = timed(lambda: list(ex.map(busy, [ms] * n_busy, chunksize=1)))
            expect(out, [ms] * n_busy, "busy map")
            m.put("c", "process_pool/map", efficiency_percent(n_busy, ms, 2, wall))
            m.raw["c_wall_s"] = wall
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


MEASURE: dict[str, Callable[[Measured, dict[str, Any], Path, Path | None], None]] = {
    "peeros": measure_peeros,
    "dask": measure_dask,
    "ray": measure_ray,
    "process_pool": measure_process_pool,
}


def child_main(system: str, cfg: dict[str, Any], out: Path, pid_file: Path | None) -> int:
    """One system, one run, in this (child) process; writes its figures to ``out``."""

    def on_term(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)  # unwinds through the finally blocks: teardown

    signal.signal(signal.SIGTERM, on_term)
    work = Path(tempfile.mkdtemp(prefix=f"peeros-bench-{system}-"))
    m = Measured(system)
    try:
        MEASURE[system](m, cfg, work, pid_file)
        return 0
    except Exception as exc:  # keep what was measured before the failure
        m.errors.append(f"{system}: {type(exc).__name__}: {exc}"[:2000])
        print(f"    {system} FAILED: {exc!r}"[:500], file=sys.stderr)
        return 1
    finally:
        out.write_text(json.dumps(m.as_json()))
        shutil.rmtree(work, ignore_errors=True)


# --- the parent: runs, children, deadlines, the results file ---------------------------


def _kill_recorded(pid_file: Path) -> None:
    """Kill PeerOS nodes a killed child left behind (each node leads its own session)."""
    if not pid_file.exists():
        return
    for pid in json.loads(pid_file.read_text()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"peeros" in cmdline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def run_child(system: str, cfg: dict[str, Any], timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="peeros-bench-") as tmp:
        out, pid_file = Path(tmp) / "out.json", Path(tmp) / "pids.json"
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            system,
            "--child-config",
            json.dumps(cfg),
            "--child-out",
            str(out),
            "--child-pids",
            str(pid_file),
        ]
        proc = subprocess.Popen(cmd, start_new_session=True, cwd=ROOT)
        error = None
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            error = f"{system}: no result within the {timeout:.0f}s deadline; killed"
            proc.send_signal(signal.SIGTERM)  # the child tears its clusters down
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the child's group
            _kill_recorded(pid_file)
        if out.exists():
            result: dict[str, Any] = json.loads(out.read_text())
            if error:
                result["errors"].append(error)
            return result
        error = error or f"{system}: the child exited with code {proc.returncode} and no result"
        return {"system": system, "values": {}, "raw": {}, "errors": [error], "info": {}}


def version_of(dist: str | None) -> str | None:
    if dist is None:
        return platform.python_version()
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def availability(system: str) -> dict[str, Any]:
    dist, module = DISTRIBUTIONS[system]
    info: dict[str, Any] = {"label": SYSTEMS[system]}
    if module is not None:
        probe = subprocess.run(
            [sys.executable, "-c", f"import {module}"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if probe.returncode != 0:
            last = (probe.stderr.strip().splitlines() or ["unknown error"])[-1]
            info.update(
                available=False,
                reason=f"`import {module}` fails here ({last}); "
                f"install with `pip install -e '.[bench]'`",
            )
            return info
    info.update(available=True, version=version_of(dist))
    return info


def machine_info() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    bwrap = shutil.which("bwrap")
    bwrap_version = None
    if bwrap:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            bwrap_version = subprocess.run(
                [bwrap, "--version"], capture_output=True, text=True, timeout=10
            ).stdout.strip()
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_gib": round(mem_gib, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "bubblewrap": bwrap_version,
        "versions": {
            d: version_of(d)
            for d in ("peeros", "dask", "distributed", "ray", "cloudpickle", "aiohttp")
        },
        "peeros_tree": git_state(),
        "load_average_start": list(os.getloadavg()),
    }


def git_state() -> str:
    """The commit PeerOS was measured at, and whether src/ had uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout.splitlines()
    except OSError:
        return "unknown"
    if not head:
        return "unknown"
    return f"{head} + {len(dirty)} uncommitted files in src/" if dirty else head


def row(
    key: str, system: str, label: str, baseline: bool = False, target: dict[str, Any] | None = None
) -> dict[str, Any]:
    r: dict[str, Any] = {"key": key, "system": system, "label": label, "baseline": baseline}
    if target:
        r["target"] = target
    return r


def sections(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    n, nb, ms = cfg["n_tasks"], cfg["n_busy"], cfg["busy_ms"]
    a_target = {
        "kind": "ratio",
        "baseline": "ray",
        "op": "<=",
        "value": 0.5,
        "text": "≤ 0.5 \u00d7 Ray",
    }
    b_target = {
        "kind": "ratio",
        "baseline": "ray",
        "op": ">=",
        "value": 3.0,
        "text": "≥ 3 \u00d7 Ray",
    }
    c_target = {"kind": "absolute", "op": ">=", "value": 90.0, "text": "≥ 90 %"}
    return [
        {
            "id": "a",
            "title": "(a) Round trip of one trivial task",
            "unit": "ms",
            "better": "lower",
            "what": (
                f"Median wall time of {cfg['samples']} sequential submit-and-wait round trips "
                f"of `f(1)` returning its argument (after {cfg['warmup']} warm-up tasks), "
                "per run; the figure is the median over runs. PeerOS: a tracker + "
                f"{cfg['peers']} peers (`LocalCluster.start({cfg['peers']})`, default "
                "settings, sandboxed workers), the client connected to peer 1 with "
                "`peeros.Client(data_dir=..., timeout=120)` (what `peeros.connect()` returns, "
                "with a longer HTTP timeout: see `CLIENT_TIMEOUT` in `bench/tasks.py`); "
                '`client.run_program("def main(x): return x", "main", [1])` is non-confidential, '
                "so the tracker places it (possibly on peer 1 itself: the *all tasks* row); "
                "the *another peer* row passes `elsewhere=True`, so the tracker places every "
                "sample on peer 2 or 3 (consecutive tasks reuse their placement lease, so "
                "they go to the same, warm, peer while the lease lasts). "
                "`client.call(trivial, 1)` sends a cloudpickled callable. Dask: "
                "`client.submit(f, 1, pure=False).result()` on `LocalCluster(n_workers=2, "
                "threads_per_worker=1, processes=True)`; Ray: `ray.get(f.remote(1))` after "
                "`ray.init(num_cpus=2, include_dashboard=False)`; stdlib: "
                "`ProcessPoolExecutor(2).submit(f, 1).result()`."
            ),
            "rows": [
                row(
                    "peeros/run_program-other",
                    "peeros",
                    "PeerOS `run_program(..., elsewhere=True)`: on another peer",
                    target=a_target,
                ),
                row("peeros/run_program-all", "peeros", "PeerOS `run_program`, all tasks"),
                row("peeros/call", "peeros", "PeerOS `call(fn, 1)`, all tasks"),
                row("dask/submit", "dask", "Dask `submit(f, 1).result()`", True),
                row("ray/remote", "ray", "Ray `ray.get(f.remote(1))`", True),
                row("process_pool/submit", "process_pool", "ProcessPoolExecutor `submit`", True),
            ],
        },
        {
            "id": "b",
            "title": f"(b) Throughput of {n:,} trivial tasks",
            "unit": "tasks/s",
            "better": "higher",
            "what": (
                f"{n:,} tasks `f(i)` returning their argument, submitted at once, timed from "
                "submission to the last result (every result checked). PeerOS (same 3-peer "
                f"cluster as (a)): `client.map(f, range({n}))` (cloudpickled callables) and the "
                "batch API with program tasks, `client.results(client.submit_requests(["
                "TaskRequest(program=..., function='main', args=[i]) ...]))`. Dask: "
                f"`client.gather(client.map(f, range({n}), pure=False))`; Ray: "
                f"`ray.get([f.remote(i) for i in range({n})])`; stdlib: "
                f"`list(ex.map(f, range({n}), chunksize=1))`."
            ),
            "rows": [
                row("peeros/map", "peeros", "PeerOS `client.map`", target=b_target),
                row(
                    "peeros/batch",
                    "peeros",
                    "PeerOS `submit_requests` + `results` (program tasks)",
                    target=b_target,
                ),
                row("dask/map", "dask", "Dask `gather(map)`", True),
                row("ray/remote", "ray", "Ray `ray.get([f.remote(i) ...])`", True),
                row("process_pool/map", "process_pool", "ProcessPoolExecutor `map`", True),
            ],
        },
        {
            "id": "c",
            "title": f"(c) Parallel efficiency: {nb:,} tasks of {ms:g} ms CPU on 2 worker slots",
            "unit": "%",
            "better": "higher",
            "what": (
                f"{nb:,} tasks that each spin for {ms:g} ms of their own thread's CPU time "
                "(`time.thread_time()`, so a task the OS preempts still does all its work), "
                f"submitted at once; efficiency = ({nb} \u00d7 {ms:g} ms / 2) / wall time. PeerOS: "
                "a tracker + 1 peer started with `--slots 2`, by `client.map` (callables) and "
                "by the batch API (program tasks). The baselines have 2 worker processes "
                "each. Scheduler, client and node processes share the same 2 cores."
            ),
            "rows": [
                row("peeros/map", "peeros", "PeerOS `client.map`", target=c_target),
                row(
                    "peeros/batch",
                    "peeros",
                    "PeerOS `submit_requests` + `results` (program tasks)",
                    target=c_target,
                ),
                row("dask/map", "dask", "Dask `gather(map)`", True),
                row("ray/remote", "ray", "Ray `ray.get([...])`", True),
                row("process_pool/map", "process_pool", "ProcessPoolExecutor `map`", True),
            ],
        },
        {
            "id": "d",
            "title": "(d) From starting a cluster to the first result",
            "unit": "s",
            "better": "lower",
            "what": (
                "Wall time from starting the system to the first trivial task's result. "
                f"PeerOS: `LocalCluster.start({cfg['peers']})` (what `peeros up` runs: a "
                f"tracker and {cfg['peers']} peers as separate processes, CA and certificates "
                "created, every peer enrolled) + `peeros.Client(...)` + the first "
                "`run_program`, placed by the tracker. Dask: `LocalCluster(...)` + `Client` "
                "+ first `submit`; Ray: `ray.init(...)` + first `f.remote`; stdlib: "
                "`ProcessPoolExecutor(2)` + first `submit`. No target in the issue."
            ),
            "rows": [
                row("peeros/up", "peeros", "PeerOS `peeros up` → first result"),
                row("peeros/up-start", "peeros", "PeerOS, of which `LocalCluster.start`"),
                row("dask/start", "dask", "Dask cluster → first result", True),
                row("ray/start", "ray", "Ray `init` → first result", True),
                row("process_pool/start", "process_pool", "ProcessPoolExecutor → first", True),
            ],
        },
    ]


def parent_main(args: argparse.Namespace) -> int:
    n_tasks = args.tasks or 5000
    n_busy = args.busy_tasks or (1000 if args.quick else 5000)
    cfg = {
        "n_tasks": n_tasks,
        "n_busy": n_busy,
        "busy_ms": args.busy_ms,
        "samples": args.samples,
        "warmup": args.warmup,
        "peers": 3,
    }
    wanted = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(wanted) - set(SYSTEMS)
    if unknown:
        print(f"unknown systems: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    timeout = args.child_timeout or (180 + 8 * n_busy * args.busy_ms / 1000 / 2 + 3 * n_tasks / 50)
    doc: dict[str, Any] = {
        "schema": resultlib.SCHEMA,
        "benchmark": "tasks",
        "title": "CPU tasks: PeerOS against Dask, Ray and ProcessPoolExecutor",
        "command": "python bench/tasks.py " + " ".join(sys.argv[1:]),
        "date": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "machine": machine_info(),
        "config": {**cfg, "runs": args.runs, "quick": args.quick, "child_timeout_s": timeout},
        "systems": {},
        "baselines": BASELINES,
        "runs": args.runs,
        "sections": sections(cfg),
        "errors": [],
        "raw": {"runs": []},
    }
    t_start = time.monotonic()
    for system in SYSTEMS:
        if system in wanted:
            doc["systems"][system] = availability(system)
        else:
            doc["systems"][system] = {
                "label": SYSTEMS[system],
                "available": False,
                "reason": "left out of this run (--systems)",
            }
    measured = [s for s in SYSTEMS if doc["systems"][s]["available"]]
    values: list[dict[str, dict[str, dict[str, float | None]]]] = []
    for run in range(args.runs):
        order = measured[run % len(measured) :] + measured[: run % len(measured)]
        per_system: dict[str, Any] = {}
        for system in order:
            print(f"run {run + 1}/{args.runs}: {system}", file=sys.stderr)
            result = run_child(system, cfg, timeout)
            per_system[system] = result
            doc["errors"].extend(f"run {run + 1}: {e}" for e in result["errors"])
        values.append({s: per_system[s]["values"] for s in per_system})
        doc["raw"]["runs"].append(per_system)
    for section in doc["sections"]:
        for r in section["rows"]:
            r["per_run"] = [
                run_values.get(r["system"], {}).get(section["id"], {}).get(r["key"])
                for run_values in values
            ]
    notes = doc["sections"][0].setdefault("notes", [])
    counts = [
        run.get("peeros", {}).get("raw", {}).get("a_run_program", {}).get("n_other")
        for run in doc["raw"]["runs"]
    ]
    if any(c is not None for c in counts):
        notes.append(
            f"Tasks of PeerOS `run_program` (default placement) that ran on another peer, "
            f"per run: {counts} of {cfg['samples']}."
        )
    sandboxed = [
        run.get("peeros", {}).get("info", {}).get("sandboxed") for run in doc["raw"]["runs"]
    ]
    if "peeros" in measured:
        notes.append(f"PeerOS workers sandboxed (bubblewrap) in each run: {sandboxed}.")
    doc["machine"]["load_average_end"] = list(os.getloadavg())
    doc["machine"]["duration_s"] = round(time.monotonic() - t_start, 1)
    resultlib.summarise(doc)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    if not args.no_report:
        import report

        report.main([])
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3, help="runs; every figure is their median")
    p.add_argument("--quick", action="store_true", help="1,000 tasks in (c) instead of 5,000")
    p.add_argument("--tasks", type=int, default=0, help="tasks in (b) (default 5,000)")
    p.add_argument("--busy-tasks", type=int, default=0, help="tasks in (c) (default 5,000)")
    p.add_argument("--busy-ms", type=float, default=10.0, help="CPU per task in (c)")
    p.add_argument("--samples", type=int, default=100, help="round trips per run in (a)")
    p.add_argument("--warmup", type=int, default=10, help="unrecorded tasks before (a)")
    p.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset")
    p.add_argument("--child-timeout", type=float, default=0, help="seconds per system and run")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--no-report", action="store_true", help="do not rewrite the docs")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--child-config", help=argparse.SUPPRESS)
    p.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--child-pids", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child_main(
            args.child, json.loads(args.child_config), args.child_out, args.child_pids
        )
    if args.runs < 1:
        p.error("--runs must be at least 1")
    return parent_main(args)


if __name__ == "__main__":
    sys.exit(main())
