"""Where PeerOS spends its time per task: py-spy on every node, cProfile in the client.

    .venv/bin/python bench/profile_tasks.py [--scenario map|batch|busy|roundtrip] [--tasks N]

Starts a local cluster (3 peers; 1 peer with ``--slots 2`` for ``busy``), warms it up,
then runs one workload while ``py-spy record --format raw --nonblocking`` samples the
tracker and every peer (idle threads excluded, so samples are CPU-busy time) and
``cProfile`` profiles the client. Prints, for each process, its busy CPU per task and the
functions with the most samples (self and inclusive). Needs ``py-spy`` (the ``bench``
extra) and ptrace rights (root here). Every process is stopped in ``finally`` blocks.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tasks import BUSY_PROGRAM, TRIVIAL_PROGRAM

RATE = 200
FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::(?P<line>\d+))?\)$")


# Defined here, in ``__main__``, so that cloudpickle sends them by value (a function of
# the ``tasks`` module would be pickled by reference, and the sandbox cannot import it).
def trivial(x: Any) -> Any:
    return x


def busy(ms: float) -> float:
    end = time.thread_time() + ms / 1000
    while time.thread_time() < end:
        pass
    return ms


def short(frame: str) -> str:
    """``func (path/file.py:12)`` → ``func (file.py)``: lines merged by function."""
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    return f"{m['func']} ({Path(m['file']).name})"


def parse_raw(path: Path) -> tuple[int, Counter[str], Counter[str]]:
    """Total samples, self samples and inclusive samples per function of a raw file."""
    total, own, incl = 0, Counter[str](), Counter[str]()
    if not path.exists():
        return 0, own, incl
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [short(f) for f in stack.split(";") if f.strip()]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    return total, own, incl


def in_loop(client: Any, fn: Any) -> None:
    """Call ``fn`` on the client's event-loop thread and wait for it."""
    done = threading.Event()

    def call() -> None:
        fn()
        done.set()

    client._loop.call_soon_threadsafe(call)
    if not done.wait(10):
        raise TimeoutError("the client's event loop did not respond")


def workload(client: Any, scenario: str, n: int) -> None:
    from peeros.protocol import TaskRequest

    if scenario == "map":
        assert client.map(trivial, range(n)) == list(range(n))
    elif scenario == "batch":
        reqs = [TaskRequest(program=TRIVIAL_PROGRAM, function="main", args=[i]) for i in range(n)]
        assert [r.result for r in client.results(client.submit_requests(reqs))] == list(range(n))
    elif scenario == "busy":
        assert client.map(busy, [10.0] * n) == [10.0] * n
    elif scenario == "busy-batch":
        req = TaskRequest(program=BUSY_PROGRAM, function="main", args=[10.0])
        assert len(client.results(client.submit_requests([req] * n))) == n
    elif scenario == "roundtrip":
        for _ in range(n):
            assert client.run_program(TRIVIAL_PROGRAM, "main", [1]).result == 1
    else:
        raise ValueError(scenario)


def main(argv: list[str] | None = None) -> int:

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--scenario", default="map", choices=["map", "batch", "busy", "busy-batch", "roundtrip"]
    )
    p.add_argument("--tasks", type=int, default=0, help="default: 5000 (roundtrip: 300)")
    p.add_argument("--top", type=int, default=12)
    args = p.parse_args(argv)
    n = args.tasks or (300 if args.scenario == "roundtrip" else 5000)
    one_peer = args.scenario.startswith("busy")
    pyspy = Path(sys.executable).with_name("py-spy")
    work = Path(tempfile.mkdtemp(prefix="peeros-profile-"))
    try:
        return profile(args, n, one_peer, pyspy, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def profile(args: argparse.Namespace, n: int, one_peer: bool, pyspy: Path, work: Path) -> int:
    import peeros
    from peeros.launcher import LocalCluster

    cluster = LocalCluster(work / "up")
    spies: list[tuple[str, subprocess.Popen[bytes], Path]] = []
    try:
        cluster.start(1 if one_peer else 3, peer_extra=["--slots", "2"] if one_peer else None)
        with peeros.connect(data_dir=cluster.data_dir) as client:
            client.map(trivial, range(20))
            for i in range(10):
                client.run_program(TRIVIAL_PROGRAM, "main", [i])
            nodes = [("tracker", cluster.tracker)] + [
                (f"peer-{i + 1}", node) for i, node in enumerate(cluster.peers)
            ]
            for name, node in nodes:
                assert node is not None
                out = work / f"{name}.txt"
                cmd = [str(pyspy), "record", "-p", str(node.pid), "-r", str(RATE)]
                cmd += ["--format", "raw", "--nonblocking", "-o", str(out)]
                spy = subprocess.Popen(
                    cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
                )
                spies.append((name, spy, out))
            time.sleep(1.0)  # let py-spy attach
            # The Client does its work on its event-loop thread: profile that thread.
            prof = cProfile.Profile()
            in_loop(client, prof.enable)
            t0 = time.perf_counter()
            workload(client, args.scenario, n)
            wall = time.perf_counter() - t0
            in_loop(client, prof.disable)
    finally:
        for _, spy, _ in spies:
            with contextlib.suppress(ProcessLookupError):
                spy.send_signal(signal.SIGINT)
        for _, spy, _ in spies:
            try:
                spy.wait(timeout=20)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
        cluster.stop()
    print(f"scenario {args.scenario}: {n} tasks in {wall:.2f}s = {n / wall:,.0f} tasks/s")
    for name, spy, out in spies:
        total, own, incl = parse_raw(out)
        if not total:
            err = spy.stderr.read().decode(errors="replace")[-300:] if spy.stderr else ""
            print(f"\n== {name}: no samples {err}")
            continue
        per_task = total / RATE / n * 1000
        print(f"\n== {name}: {total / RATE:.2f}s busy = {per_task:.3f} ms CPU per task")
        for title, counter in (("self", own), ("inclusive", incl)):
            print(f"  top {title}:")
            for func, c in counter.most_common(args.top):
                print(f"    {100 * c / total:5.1f}%  {c / RATE / n * 1000:7.3f} ms/task  {func}")
    s = io.StringIO()
    stats = pstats.Stats(prof, stream=s)
    stats.sort_stats("tottime").print_stats(args.top)
    print(f"\n== client event-loop thread (cProfile, tottime; {n} tasks)")
    print("\n".join(s.getvalue().splitlines()[:40]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
