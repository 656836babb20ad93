"""Shared-file downloads: weak and strong scaling on loopback, multi-source benefit in netns.

    .venv/bin/python bench/scaling.py [--runs 3] [--sizes 16,64,256] [--ns-size 128]
                                      [--skip-netns] [--skip-loopback]

(1) Loopback, one local cluster (a tracker with ``--share-replicas 1`` and 5 peers: one
holder, four downloaders). For each size S (MiB) and concurrency N in 1, 2, 4:

- **weak scaling**: N downloaders fetch one S MiB file each at once (the work grows with
  N); the figure is the aggregate rate, N x S over the wall time until the last one ends;
- **strong scaling**: a fixed S MiB is split into N files of S/N MiB fetched at once by N
  downloaders; the figure is S over the wall time.

Each downloader fetches its own file, so no downloader becomes a second holder of what
another one fetches; after every measurement the copies are deleted and rescanned away.

(2) Multi-source benefit, in network namespaces made here (root needed): three holders
and a downloader, each in its own namespace, joined by veth pairs to a bridge in a fifth
namespace; each holder's uplink is capped with ``tc qdisc ... tbf rate 80mbit burst 64kb
latency 400ms``. The tracker runs in the downloader's namespace. A file held by one
holder and a file of the same size held by all three are downloaded in turn; target
(issue 6): 3 holders >= 2.5 x the single-holder rate. Every packet stays inside those
namespaces (clients run under ``ip netns exec`` too); they are deleted afterwards.

Results go to ``bench/results/scaling.json`` (schema: ``bench/resultlib.py``) and the
plots to ``docs/scaling-weak.png``, ``docs/scaling-strong.png`` and
``docs/scaling-multisource.png``. Rates are in MB/s (10^6 bytes per second).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import resultlib

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

from peeros import __version__  # noqa: E402
from peeros.client import AsyncClient  # noqa: E402
from peeros.client_share import AsyncShare  # noqa: E402
from peeros.launcher import LocalCluster, NodeProcess, stop, wait_for_info  # noqa: E402

MIB = 1 << 20
CONCURRENCY = (1, 2, 4)
TBF = ["tbf", "rate", "80mbit", "burst", "64kb", "latency", "400ms"]
CAP_MBPS = 80e6 / 8 / 1e6  # the tbf rate in MB/s
NS_TARGET = 2.5


def write_random(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        left = size
        while left:
            n = min(left, 8 * MIB)
            f.write(os.urandom(n))
            left -= n


def clear_downloads(peer_dir: Path) -> None:
    down = peer_dir / "downloaded"
    if down.is_dir():
        for item in down.iterdir():
            if item.is_file():
                item.unlink()


# --------------------------------------------------------------------------- loopback


def loopback_files(sizes: list[int]) -> dict[str, int]:
    """name -> bytes of every file the holder needs (weak: S per slot, strong: S/N)."""
    files: dict[str, int] = {}
    for size in sizes:
        for n in CONCURRENCY:
            for slot in range(n):
                files[f"w{size}-{slot}.bin"] = size * MIB
                files[f"s{size}x{n}-{slot}.bin"] = size * MIB // n
    return files


async def wait_indexed(share: AsyncShare, names: list[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    missing = list(names)
    while missing:
        got = await share.lookup("*.bin", mode="glob")
        indexed = {h.name for h in got.hits if h.holders}
        missing = [n for n in missing if n not in indexed]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"not in the index after {timeout:.0f}s: {missing[:5]}")
        await asyncio.sleep(0.2)


async def timed_downloads(
    shares: list[AsyncShare], peer_dirs: list[Path], names: list[str]
) -> tuple[float, int, list[float]]:
    """Download ``names[i]`` on ``shares[i]`` all at once: wall seconds, bytes, per-file s."""
    t0 = time.perf_counter()
    results = await asyncio.gather(
        *(s.download(name=n) for s, n in zip(shares, names, strict=True))
    )
    wall = time.perf_counter() - t0
    total = sum(r.size for r in results)
    for r in results:
        if r.resumed_bytes:
            raise RuntimeError(f"{r.name} was (partly) there already: not a fresh download")
    for d in peer_dirs:
        clear_downloads(d)
    await asyncio.gather(*(s.rescan() for s in shares))
    return wall, total, [r.seconds for r in results]


async def loopback_run(
    cluster: LocalCluster, sizes: list[int], raw: list[dict[str, Any]]
) -> dict[str, float]:
    downloaders = cluster.peers[1:]  # peers[0] holds every file
    clients = [AsyncClient(data_dir=p.data_dir, timeout=300) for p in downloaders]
    shares = [AsyncShare(c) for c in clients]
    dirs = [p.data_dir for p in downloaders]
    figures: dict[str, float] = {}
    try:
        for size in sizes:
            for n in CONCURRENCY:
                for kind in ("weak", "strong"):
                    if kind == "weak":
                        names = [f"w{size}-{i}.bin" for i in range(n)]
                    else:
                        names = [f"s{size}x{n}-{i}.bin" for i in range(n)]
                    wall, total, each = await timed_downloads(shares[:n], dirs[:n], names)
                    rate = total / wall / 1e6
                    figures[f"{kind}-{size}-c{n}"] = rate
                    raw.append(
                        {
                            "kind": kind,
                            "size_mib": size,
                            "concurrency": n,
                            "bytes": total,
                            "wall_s": wall,
                            "per_download_s": each,
                            "mbps": rate,
                        }
                    )
                    print(f"  {kind:6} {size:4} MiB  c={n}: {rate:7.1f} MB/s ({wall:.2f} s)")
    finally:
        for c in clients:
            await c.close()
    return figures


def loopback(
    args: argparse.Namespace, tmp: Path, errors: list[str], raw: list[dict[str, Any]]
) -> list[dict[str, float]]:
    files = loopback_files(args.sizes)
    root = tmp / "loopback"
    shared = root / "peer-1" / "shared"
    print(f"writing {len(files)} files, {sum(files.values()) / MIB:.0f} MiB ...")
    for name, size in files.items():
        write_random(shared / name, size)
    cluster = LocalCluster(root)
    samples: list[dict[str, float]] = []
    try:
        cluster.start(
            5,
            peer_extra=["--rescan-interval", "3600", "--no-resp"],
            tracker_extra=["--share-replicas", "1"],
        )

        async def ready() -> None:
            client = AsyncClient(data_dir=cluster.peers[1].data_dir, timeout=120)
            try:
                await wait_indexed(AsyncShare(client), list(files))
            finally:
                await client.close()

        asyncio.run(ready())
        for run in range(args.runs):
            print(f"loopback run {run + 1}/{args.runs}")
            try:
                samples.append(asyncio.run(loopback_run(cluster, args.sizes, raw)))
            except Exception as exc:  # a failed run is data too
                errors.append(f"loopback run {run + 1}: {exc!r}")
                samples.append({})
    finally:
        cluster.stop()
    return samples


# --------------------------------------------------------------------------- namespaces

NS_NODES = {"h1": "10.77.0.1", "h2": "10.77.0.2", "h3": "10.77.0.3", "d": "10.77.0.10"}


def sh(*cmd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


@contextlib.contextmanager
def namespaces(prefix: str) -> Iterator[dict[str, str]]:
    """Bridge namespace + one namespace per node; yields node -> namespace name."""
    made: list[str] = []
    bridge = f"{prefix}br"
    try:
        sh("ip", "netns", "add", bridge)
        made.append(bridge)
        sh("ip", "-n", bridge, "link", "set", "lo", "up")
        sh("ip", "-n", bridge, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", bridge, "link", "set", "br0", "up")
        names: dict[str, str] = {}
        for node, addr in NS_NODES.items():
            ns = f"{prefix}{node}"
            sh("ip", "netns", "add", ns)
            made.append(ns)
            names[node] = ns
            port = f"b-{node}"
            sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", port, "netns", bridge)
            sh("ip", "-n", bridge, "link", "set", port, "master", "br0")
            sh("ip", "-n", bridge, "link", "set", port, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            if node.startswith("h"):  # cap what the holder sends
                sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "eth0", "root", *TBF)
        yield names
    finally:
        for ns in reversed(made):
            with contextlib.suppress(Exception):
                sh("ip", "netns", "del", ns)


def ns_spawn(ns: str, role: str, args: list[str], data_dir: Path) -> NodeProcess:
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"{role}.log"
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "peeros", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    # ``ip netns exec`` execs the command in place: the pid is the node's own.
    return NodeProcess(role, data_dir, proc, log_path=log_path)


def ns_cli(ns: str, *args: str, timeout: float = 300) -> Any:
    out = sh_timeout(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "peeros", *args, "--json"], timeout
    )
    return json.loads(out)


def sh_timeout(cmd: list[str], timeout: float) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[4:])}: {done.stderr.strip()[-500:]}")
    return done.stdout


def netns_bench(
    args: argparse.Namespace, tmp: Path, errors: list[str], raw: list[dict[str, Any]]
) -> list[dict[str, float]]:
    samples: list[dict[str, float]] = []
    size = args.ns_size * MIB
    root = tmp / "netns"
    prefix = f"pbs{os.getpid() % 10000}-"
    nodes: list[NodeProcess] = []
    with namespaces(prefix) as ns:
        try:
            tdir = root / "tracker"
            taddr = NS_NODES["d"]
            tracker = ns_spawn(
                ns["d"],
                "tracker",
                [
                    "tracker",
                    "--host",
                    taddr,
                    "--port",
                    "8888",
                    "--cert-host",
                    taddr,
                    "--share-replicas",
                    "1",
                    "--data-dir",
                    str(tdir),
                ],
                tdir,
            )
            nodes.append(tracker)
            wait_for_info(tracker, "tracker.json")
            token = (tdir / "join-token").read_text().strip()
            solo = root / "solo.bin"
            multi = root / "multi.bin"
            write_random(solo, size)
            write_random(multi, size)
            peers: dict[str, NodeProcess] = {}
            for node in ("h1", "h2", "h3", "d"):
                pdir = root / node
                shared = pdir / "shared"
                shared.mkdir(parents=True, exist_ok=True)
                if node == "h1":
                    shutil.copyfile(solo, shared / "solo.bin")
                if node.startswith("h"):
                    shutil.copyfile(multi, shared / "multi.bin")
                addr = NS_NODES[node]
                peer = ns_spawn(
                    ns[node],
                    "peer",
                    [
                        "peer",
                        "--tracker",
                        f"{taddr}:8888",
                        "--join",
                        token,
                        "--host",
                        addr,
                        "--port",
                        "9000",
                        "--advertise",
                        f"{addr}:9000",
                        "--data-dir",
                        str(pdir),
                        "--rescan-interval",
                        "3600",
                        "--no-resp",
                    ],
                    pdir,
                )
                nodes.append(peer)
                peers[node] = peer
            for peer in peers.values():
                wait_for_info(peer, "api.json", timeout=60)
            ddir = str(peers["d"].data_dir)
            want = {"solo.bin": 1, "multi.bin": 3}
            deadline = time.monotonic() + 120
            while True:
                hits = ns_cli(ns["d"], "lookup", "*.bin", "--glob", "--data-dir", ddir)
                have = {h["name"]: len(h["holders"]) for h in hits}
                if all(have.get(k, 0) >= v for k, v in want.items()):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"holders never indexed: {have}")
                time.sleep(0.5)
            for run in range(args.runs):
                figures: dict[str, float] = {}
                for name, key in (("solo.bin", "one"), ("multi.bin", "three")):
                    try:
                        got = ns_cli(ns["d"], "download", name, "--data-dir", ddir)
                        rate = got["size"] / got["seconds"] / 1e6
                        figures[key] = rate
                        raw.append(
                            {
                                "file": name,
                                "run": run + 1,
                                "seconds": got["seconds"],
                                "sources": len(got["sources"]),
                                "mbps": rate,
                            }
                        )
                        print(
                            f"  netns run {run + 1} {key} holder(s): {rate:6.2f} MB/s "
                            f"({got['seconds']:.2f} s, {len(got['sources'])} sources)"
                        )
                    except Exception as exc:
                        errors.append(f"netns run {run + 1} {name}: {exc!r}")
                    clear_downloads(peers["d"].data_dir)
                    ns_cli(ns["d"], "share", "rescan", "--data-dir", ddir)
                samples.append(figures)
        finally:
            peer_nodes = [n for n in nodes if n.role == "peer"]
            stop(peer_nodes, 3.0)
            stop([n for n in nodes if n.role == "tracker"], 2.0)
    return samples


# --------------------------------------------------------------------------- output


def scaling_sections(sizes: list[int], loop: list[dict[str, float]]) -> list[dict[str, Any]]:
    sections = []
    for kind in ("weak", "strong"):
        for size in sizes:
            if kind == "weak":
                what = (
                    f"N downloader peers each fetch their own {size} MiB file from one holder "
                    "at once, on loopback; aggregate rate = N x size / wall time (MB/s)"
                )
            else:
                what = (
                    f"{size} MiB in total, split into N files of {size}/N MiB fetched at once "
                    "by N downloader peers from one holder, on loopback; size / wall time (MB/s)"
                )
            rows = [
                {
                    "key": f"peeros/{kind}-{size}-c{n}",
                    "system": "peeros",
                    "label": f"{n} downloader{'s' if n > 1 else ''}",
                    "baseline": False,
                    "per_run": [run.get(f"{kind}-{size}-c{n}") for run in loop],
                }
                for n in CONCURRENCY
            ]
            sections.append(
                {
                    "id": f"{kind}-{size}",
                    "title": f"{kind.capitalize()} scaling, {size} MiB",
                    "what": what,
                    "unit": "MB/s",
                    "better": "higher",
                    "rows": rows,
                }
            )
    return sections


def netns_section(ns: list[dict[str, float]], size: int, skipped: str | None) -> dict[str, Any]:
    section: dict[str, Any] = {
        "id": "multisource",
        "title": "Multi-source download, holders capped at 80 Mbit/s each",
        "what": (
            f"A {size} MiB file downloaded from 1 holder vs one held by 3 holders; each "
            "holder, the downloader and the tracker in network namespaces joined by a "
            "bridge; every holder's uplink capped with `tc tbf rate 80mbit burst 64kb "
            "latency 400ms` (10 MB/s). Rate = size / the peer's download time (MB/s)"
        ),
        "unit": "MB/s",
        "better": "higher",
        "rows": [
            {
                "key": "single/one-holder",
                "system": "single",
                "label": "1 holder",
                "baseline": True,
                "per_run": [run.get("one") for run in ns],
            },
            {
                "key": "peeros/three-holders",
                "system": "peeros",
                "label": "3 holders",
                "baseline": False,
                "per_run": [run.get("three") for run in ns],
                "target": {
                    "kind": "ratio",
                    "baseline": "single",
                    "op": ">=",
                    "value": NS_TARGET,
                    "text": f">= {NS_TARGET} x 1 holder",
                },
            },
        ],
        "notes": [f"The link cap alone allows {CAP_MBPS:.0f} MB/s per holder."],
    }
    if skipped:
        section["notes"].append(f"Not measured: {skipped}")
    return section


def plots(doc: dict[str, Any], sizes: list[int], out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_id = {s["id"]: s for s in doc["sections"]}
    written = []
    for kind in ("weak", "strong"):
        fig, ax = plt.subplots(figsize=(6, 4))
        for size in sizes:
            rows = by_id[f"{kind}-{size}"]["rows"]
            ys = [r["median"] for r in rows]
            if any(y is not None for y in ys):
                ax.plot(CONCURRENCY, ys, marker="o", label=f"{size} MiB")
        ax.set_xticks(CONCURRENCY)
        ax.set_xlabel("concurrent downloaders")
        ax.set_ylabel("aggregate MB/s (median)")
        title = "per downloader: size fixed" if kind == "weak" else "total size fixed, split N ways"
        ax.set_title(f"{kind.capitalize()} scaling on loopback ({title})", fontsize=10)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        fig.tight_layout()
        path = out_dir / f"scaling-{kind}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    ms = by_id.get("multisource")
    if ms and any(r["median"] is not None for r in ms["rows"]):
        fig, ax = plt.subplots(figsize=(5, 4))
        labels = [r["label"] for r in ms["rows"]]
        values = [r["median"] or 0.0 for r in ms["rows"]]
        ax.bar(labels, values, color=["#999999", "#3a7bd5"])
        ax.axhline(CAP_MBPS, linestyle="--", color="k", linewidth=0.8, label="one link's cap")
        ax.axhline(NS_TARGET * values[0], linestyle=":", color="r", linewidth=0.8, label="target")
        ax.set_ylabel("MB/s (median)")
        ax.set_title("Multi-source download, 80 Mbit/s per holder", fontsize=10)
        ax.legend()
        fig.tight_layout()
        path = out_dir / "scaling-multisource.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument(
        "--sizes",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[16, 64, 256],
        help="MiB, comma-separated",
    )
    p.add_argument("--ns-size", type=int, default=128, help="MiB of the netns download")
    p.add_argument("--skip-loopback", action="store_true")
    p.add_argument("--skip-netns", action="store_true")
    p.add_argument("--out", type=Path, default=HERE / "results" / "scaling.json")
    p.add_argument("--plots", type=Path, default=ROOT / "docs")
    args = p.parse_args(argv)
    errors: list[str] = []
    raw: dict[str, list[dict[str, Any]]] = {"loopback": [], "netns": []}
    loop: list[dict[str, float]] = []
    ns: list[dict[str, float]] = []
    skipped: str | None = None
    with tempfile.TemporaryDirectory(prefix="peeros-scaling-") as tmp:
        if not args.skip_loopback:
            loop = loopback(args, Path(tmp), errors, raw["loopback"])
        if args.skip_netns:
            skipped = "--skip-netns"
        elif os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("tc") is None:
            skipped = "needs root, ip and tc"
        else:
            try:
                ns = netns_bench(args, Path(tmp), errors, raw["netns"])
            except Exception as exc:
                errors.append(f"netns: {exc!r}")
                skipped = f"setup failed: {exc}"
    doc = {
        "schema": resultlib.SCHEMA,
        "benchmark": "scaling",
        "title": "File sharing: download scaling and multi-source benefit",
        "command": "python bench/scaling.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "systems": {
            "peeros": {"label": "PeerOS", "available": True, "version": __version__},
            "single": {
                "label": "1 holder",
                "available": bool(ns),
                **({"reason": skipped} if skipped else {}),
            },
        },
        "baselines": ["single"],
        "runs": args.runs,
        "sections": [
            *scaling_sections(args.sizes, loop),
            netns_section(ns, args.ns_size, skipped),
        ],
        "errors": errors,
        "raw": raw,
    }
    doc = resultlib.summarise(doc)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    for path in plots(doc, args.sizes, args.plots):
        print(f"wrote {path}")
    print(f"wrote {args.out}")
    target = doc["sections"][-1]["rows"][1]["target"]
    print(f"multi-source: {target.get('measured')} x ({target['status']})")
    for e in errors:
        print("error:", e, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
