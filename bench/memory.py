"""Memory sharing against redis-server: redis-benchmark and redis-py, in one run.

    .venv/bin/python bench/memory.py [--runs 3] [--requests 100000] [--no-report]

Starts a ``redis-server`` (Debian's package, persistence off) and a one-peer PeerOS
cluster, then for each run and each server: ``redis-benchmark -t set,get -c 50 -n N
-d 100`` without and with ``-P 16``, and a redis-py loop (sequential, and pipelined by
100). Results go to ``bench/results/memory.json`` (schema: ``bench/resultlib.py``) and
``docs/performance.md`` is regenerated. Targets (issue 4): PeerOS >= 0.5 x redis-server's
ops/s without pipelining, >= 0.25 x with ``-P 16``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import io
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis
import resultlib

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from peeros import __version__  # noqa: E402
from peeros.launcher import LocalCluster  # noqa: E402

VALUE = "x" * 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Iterator[tuple[int, str | None]]:
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()
        yield port, None
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def peeros_peer(root: Path) -> Iterator[tuple[int, str | None]]:
    cluster = LocalCluster(root / "cluster")
    try:
        cluster.start(1)
        peer = cluster.peers[0]
        port = int(peer.info["resp_address"].rsplit(":", 1)[1])
        yield port, (peer.data_dir / "api.token").read_text().strip()
    finally:
        cluster.stop()


def redis_benchmark(
    port: int, password: str | None, requests: int, pipeline: int
) -> dict[str, float]:
    cmd = [
        "redis-benchmark",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-t",
        "set,get",
        "-c",
        "50",
        "-n",
        str(requests),
        "-d",
        "100",
        "-P",
        str(pipeline),
        "--csv",
    ]
    if password:
        cmd += ["-a", password]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True).stdout
    rates = {}
    for row in csv.reader(io.StringIO(out)):
        if row and row[0] in ("SET", "GET"):
            rates[row[0].lower()] = float(row[1])
    return rates


def redis_py(port: int, password: str | None, n: int) -> dict[str, float]:
    client = redis.Redis(port=port, password=password)
    try:
        t0 = time.perf_counter()
        for i in range(n):
            client.set(f"k{i}", VALUE)
            client.get(f"k{i}")
        sequential = 2 * n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for start in range(0, n, 100):
            pipe = client.pipeline(transaction=False)
            for i in range(start, min(start + 100, n)):
                pipe.set(f"p{i}", VALUE)
                pipe.get(f"p{i}")
            pipe.execute()
        pipelined = 2 * n / (time.perf_counter() - t0)
        client.flushdb()
    finally:
        client.close()
    return {"sequential": sequential, "pipelined": pipelined}


def measure(port: int, password: str | None, requests: int, py_ops: int) -> dict[str, float]:
    plain = redis_benchmark(port, password, requests, 1)
    piped = redis_benchmark(port, password, requests, 16)
    py = redis_py(port, password, py_ops)
    return {
        "set": plain["set"],
        "get": plain["get"],
        "set_p16": piped["set"],
        "get_p16": piped["get"],
        "py_seq": py["sequential"],
        "py_pipe": py["pipelined"],
    }


#: One section per metric: report.py compares a row with its section's baseline row.
METRICS = [
    ("set", "redis-benchmark SET", "no pipelining", 0.5),
    ("get", "redis-benchmark GET", "no pipelining", 0.5),
    ("set_p16", "redis-benchmark SET, `-P 16`", "16 commands per round trip", 0.25),
    ("get_p16", "redis-benchmark GET, `-P 16`", "16 commands per round trip", 0.25),
    ("py_seq", "redis-py, one command at a time", "SET and GET pairs, sequential", None),
    ("py_pipe", "redis-py, pipelined by 100", "SET and GET pairs, 100 per pipeline", None),
]


def build_doc(
    args: argparse.Namespace, samples: dict[str, list[dict[str, float]]], errors: list[str]
) -> dict[str, Any]:
    sections = []
    for metric, title, how, target in METRICS:
        if metric.startswith("py"):
            what = f"{args.py_ops} {how} from one redis-py client (ops/s)"
        else:
            what = f"`redis-benchmark -t set,get -c 50 -n {args.requests} -d 100`, {how} (ops/s)"
        rows = []
        for system in ("peeros", "redis"):
            row: dict[str, Any] = {
                "key": f"{system}/{metric}",
                "system": system,
                "label": "PeerOS" if system == "peeros" else "redis-server",
                "baseline": system == "redis",
                "per_run": [run.get(metric) for run in samples[system]],
            }
            if system == "peeros" and target is not None:
                row["target"] = {
                    "kind": "ratio",
                    "baseline": "redis",
                    "op": ">=",
                    "value": target,
                    "text": f">= {target} x redis-server",
                }
            rows.append(row)
        sections.append(
            {
                "id": metric,
                "title": title,
                "what": what,
                "unit": "ops/s",
                "better": "higher",
                "rows": rows,
            }
        )
    return {
        "schema": resultlib.SCHEMA,
        "benchmark": "memory",
        "title": "Memory: the Redis-protocol front against redis-server",
        "command": "python bench/memory.py " + " ".join(sys.argv[1:]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "redis-server": subprocess.run(
                ["redis-server", "--version"], capture_output=True, text=True
            ).stdout.strip(),
        },
        "systems": {
            "peeros": {"label": "PeerOS", "available": True, "version": __version__},
            "redis": {"label": "redis-server", "available": True},
        },
        "baselines": ["redis"],
        "runs": args.runs,
        "sections": sections,
        "errors": errors,
        "raw": samples,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--requests", type=int, default=100_000)
    p.add_argument("--py-ops", type=int, default=10_000)
    p.add_argument("--out", type=Path, default=HERE / "results" / "memory.json")
    p.add_argument("--no-report", action="store_true")
    args = p.parse_args(argv)
    for tool in ("redis-server", "redis-benchmark"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing: apt-get install redis-server redis-tools", file=sys.stderr)
            return 2
    samples: dict[str, list[dict[str, float]]] = {"peeros": [], "redis": []}
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="peeros-bench-") as tmp:
        for run in range(args.runs):
            for system in ("redis", "peeros"):
                server = redis_server() if system == "redis" else peeros_peer(Path(tmp) / f"r{run}")
                try:
                    with server as (port, password):
                        figures = measure(port, password, args.requests, args.py_ops)
                except Exception as exc:  # record and go on: a failed run is data too
                    errors.append(f"run {run + 1} {system}: {exc!r}")
                    figures = {}
                samples[system].append(figures)
                print(
                    f"run {run + 1} {system}: "
                    + json.dumps({k: round(v) for k, v in figures.items()})
                )
    doc = resultlib.summarise(build_doc(args, samples, errors))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    if not args.no_report:
        import report

        report.main([])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
