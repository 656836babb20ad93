"""Files against http.server + curl: big files, owned upload and small files, in one run.

    .venv/bin/python bench/files.py [--runs 3] [--size-mb 1024] [--small 1000] [--no-report]

Starts a 3-peer PeerOS cluster, ``python3 -m http.server`` serving a random file of
``--size-mb`` MiB, and a tiny threaded HTTP/1.1 keep-alive server with TCP_NODELAY serving
``--small`` files of 1 KiB. Per run:

* big file: ``client.files.put`` then ``client.files.get`` (SHA-256 verified by PeerOS),
  on the local peer and on another peer (``.on(peer)``, relayed by the local one), against
  ``curl -s -o FILE`` from http.server followed by SHA-256 of the written file with hashlib.
  The curl baseline **includes** the hashing time (PeerOS's get includes its verification);
  curl alone is shown too, without a target.
* owned upload (``client.owned.upload``, 2 holders) against the local plain put-file.
* small files fetched one by one with ``client.files.get`` against one ``curl`` process
  given all the URLs (``--config``), reusing one keep-alive connection; both verified
  (PeerOS by its own hash check, curl's output by hashlib, inside the timing).
* the same small files in one ``client.files.get_many`` call (many files per request),
  against the same curl run.

MB/s means 10^6 bytes per second. Results go to ``bench/results/files.json`` (schema:
``bench/resultlib.py``); ``--no-report`` leaves ``docs/performance.md`` alone. Targets
(issue 5): get-file >= 1.0 x curl, owned upload >= 0.5 x put-file, small files >= 1.0 x
the keep-alive + TCP_NODELAY baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import resultlib

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from peeros import __version__  # noqa: E402
from peeros.client import Client  # noqa: E402
from peeros.launcher import LocalCluster  # noqa: E402

MiB = 1024 * 1024
SMALL_SIZE = 1024

#: The small-file baseline: http.server, threaded, HTTP/1.1 keep-alive, TCP_NODELAY.
NODELAY_SERVER = """
import http.server, socket, sys
class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    def log_message(self, *args):
        pass
def handler(*a, **kw):
    return Handler(*a, directory=sys.argv[2], **kw)
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), handler).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def make_file(path: Path, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(MiB, left))
            f.write(chunk)
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def http_server(args: list[str], directory: Path, probe: str) -> Iterator[str]:
    """Run an HTTP server on a free port; yield its base URL once ``probe`` answers."""
    for _attempt in range(5):
        port = free_port()
        proc = subprocess.Popen(
            [*args, str(port), str(directory)] if args[1] == "-c" else [*args, str(port)],
            cwd=directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        ready = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"{base}/{probe}", timeout=2) as resp:
                    resp.read(1)
                ready = True
                break
            except OSError:
                time.sleep(0.05)
        if ready:
            try:
                yield base
            finally:
                proc.terminate()
                proc.wait(timeout=10)
            return
        proc.kill()
        proc.wait()
    raise RuntimeError(f"HTTP server {args} did not start")


@contextlib.contextmanager
def cluster(root: Path, quota_mb: int, n_peers: int = 3) -> Iterator[tuple[LocalCluster, Client]]:
    c = LocalCluster(root)
    client: Client | None = None
    try:
        # The default owned quota (1 GiB per owner per holder) is below 1 GiB + AEAD overhead.
        c.start(n_peers, peer_extra=["--owned-quota-mb", str(quota_mb)])
        client = Client(data_dir=c.peers[0].data_dir, timeout=120.0)
        deadline = time.monotonic() + 60
        while sum(p.alive for p in client.peers()) < n_peers:
            if time.monotonic() > deadline:
                raise RuntimeError("the peers did not all register with the tracker")
            time.sleep(0.1)
        yield c, client
    finally:
        if client is not None:
            client.close()
        c.stop()


def timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def curl_big(url: str, out: Path, expected: str) -> tuple[float, float]:
    """Seconds for curl alone, and for curl + SHA-256 of the written file."""
    t0 = time.perf_counter()
    subprocess.run(["curl", "-s", "-f", "-o", str(out), url], check=True, timeout=900)
    t1 = time.perf_counter()
    digest = sha256_file(out)
    t2 = time.perf_counter()
    if digest != expected:
        raise RuntimeError("curl's file does not hash to the source's SHA-256")
    return t1 - t0, t2 - t0


def curl_small(base: str, names: list[str], out_dir: Path, digests: dict[str, str]) -> float:
    cfg = out_dir.parent / f"{out_dir.name}.curlrc"
    cfg.write_text("".join(f'url = "{base}/{n}"\noutput = "{out_dir / n}"\n' for n in names))
    t0 = time.perf_counter()
    subprocess.run(["curl", "-s", "-f", "--config", str(cfg)], check=True, timeout=900)
    for n in names:
        if sha256_file(out_dir / n) != digests[n]:
            raise RuntimeError(f"curl's {n} does not match")
    seconds = time.perf_counter() - t0
    cfg.unlink()
    return seconds


def one_run(
    run: int,
    args: argparse.Namespace,
    work: Path,
    client: Client,
    other: str,
    big: Path,
    big_sha: str,
    big_url: str,
    small_url: str,
    small_names: list[str],
    small_sha: dict[str, str],
) -> dict[str, float]:
    mb = big.stat().st_size / 1e6
    out: dict[str, float] = {}
    dl = work / f"dl-{run}"
    dl.mkdir()
    # The small files stay until the end of the benchmark: on this ext4 without a journal
    # each new inode is allocated past every inode deleted in the last ~30 s of its group
    # (ext4's recently_deleted check): deleting thousands of files here would make each
    # file creation of the next run cost 0.2-1 ms instead of ~35 us, curl's and PeerOS's.
    # (1) big file: curl first, then PeerOS local, then PeerOS on another peer.
    curl_only, curl_hashed = curl_big(big_url, dl / "curl.bin", big_sha)
    (dl / "curl.bin").unlink()
    out["curl_get_raw"] = mb / curl_only
    out["curl_get"] = mb / curl_hashed
    for where, files in (("local", client.files), ("remote", client.files.on(other))):
        name = f"big-{where}-{run}.bin"
        out[f"put_{where}"] = mb / timed(lambda f=files, n=name: f.put(n, big))
        dest = dl / name
        out[f"get_{where}"] = mb / timed(lambda f=files, n=name, d=dest: f.get(n, d))
        if dest.stat().st_size != big.stat().st_size:
            raise RuntimeError(f"{name}: wrong size")
        dest.unlink()
        files.delete(name)
    # (2) owned upload to 2 holders.
    oname = f"owned-{run}.bin"
    out["owned_upload"] = mb / timed(lambda: client.owned.upload(big, oname, replicas=2))
    client.owned.delete(oname)
    # (3) small files, one by one.
    sdir = dl / "curl-small"
    sdir.mkdir()
    out["small_curl"] = len(small_names) / curl_small(small_url, small_names, sdir, small_sha)
    for where, files in (("local", client.files), ("remote", client.files.on(other))):
        pdir = dl / f"peeros-small-{where}"
        pdir.mkdir()
        t0 = time.perf_counter()
        for n in small_names:
            files.get(f"{where}-{n}", pdir / n)
        out[f"small_{where}"] = len(small_names) / (time.perf_counter() - t0)
    # (4) the same files in one call (get_many: many files per request).
    for where, files in (("local", client.files), ("remote", client.files.on(other))):
        bdir = dl / f"peeros-batch-{where}"
        bdir.mkdir()
        t0 = time.perf_counter()
        files.get_many([f"{where}-{n}" for n in small_names], bdir)
        out[f"batch_{where}"] = len(small_names) / (time.perf_counter() - t0)
    return out


def target(baseline: str, value: float, text: str) -> dict[str, Any]:
    return {"kind": "ratio", "baseline": baseline, "op": ">=", "value": value, "text": text}


def build_doc(
    args: argparse.Namespace, samples: list[dict[str, float]], errors: list[str]
) -> dict[str, Any]:
    def row(
        key: str, system: str, label: str, metric: str, base: bool = False, tgt: Any = None
    ) -> dict[str, Any]:
        r: dict[str, Any] = {
            "key": key,
            "system": system,
            "label": label,
            "baseline": base,
            "per_run": [s.get(metric) for s in samples],
        }
        if tgt is not None:
            r["target"] = tgt
        return r

    size = f"{args.size_mb} MiB"
    curl_row = row(
        "curl/get+sha256",
        "curl",
        "`http.server` + `curl -s -o FILE`, then SHA-256 (hashlib)",
        "curl_get",
        base=True,
    )
    get_tgt = target("curl", 1.0, ">= 1.0 x curl writing the file")
    sections = [
        {
            "id": "get-file",
            "title": f"get-file, {size}",
            "what": (
                f"One {size} file of random bytes fetched into a file, SHA-256 verified: "
                "`client.files.get` (verification built in) from the local peer and from "
                "another peer (`.on(peer)`, relayed by the local one) against "
                "`python3 -m http.server` + `curl -s -o FILE` **plus** hashing the written "
                "file with hashlib (the hash time is counted for both). MB/s = 10^6 B/s."
            ),
            "unit": "MB/s",
            "better": "higher",
            "rows": [
                row(
                    "peeros/get-local",
                    "peeros",
                    "PeerOS `files.get`, local peer",
                    "get_local",
                    tgt=get_tgt,
                ),
                row(
                    "peeros/get-remote",
                    "peeros",
                    "PeerOS `files.on(peer).get`, other peer",
                    "get_remote",
                    tgt=get_tgt,
                ),
                curl_row,
                row(
                    "curl/get-raw",
                    "curl",
                    "curl alone, without hashing (not the baseline)",
                    "curl_get_raw",
                ),
            ],
        },
        {
            "id": "put-file",
            "title": f"put-file, {size}",
            "what": (
                f"The same {size} file stored with `client.files.put` (hashes the file, "
                "streams it; the peer checks the hash and fsyncs before answering). Compared "
                "with the curl download only for scale: there is no upload baseline."
            ),
            "unit": "MB/s",
            "better": "higher",
            "rows": [
                row("peeros/put-local", "peeros", "PeerOS `files.put`, local peer", "put_local"),
                row(
                    "peeros/put-remote",
                    "peeros",
                    "PeerOS `files.on(peer).put`, other peer",
                    "put_remote",
                ),
                curl_row,
            ],
        },
        {
            "id": "owned-upload",
            "title": f"owned upload, {size}, 2 holders",
            "what": (
                f"`client.owned.upload(path, replicas=2)` of the same {size} file (encrypted "
                "by the local peer, stored on 2 other peers) against plain `files.put` on the "
                "local peer, measured in the same run."
            ),
            "unit": "MB/s",
            "better": "higher",
            "rows": [
                row(
                    "peeros/owned-upload",
                    "peeros",
                    "PeerOS `owned.upload`, 2 holders",
                    "owned_upload",
                    tgt=target("put_file", 0.5, ">= 0.5 x plain put-file"),
                ),
                row(
                    "put_file/put-local",
                    "put_file",
                    "PeerOS plain `files.put`, local peer",
                    "put_local",
                    base=True,
                ),
            ],
        },
        {
            "id": "small-files",
            "title": f"{args.small:,} files of 1 KiB, one by one",
            "what": (
                f"{args.small:,} files of 1 KiB fetched one at a time: `client.files.get` "
                "(local peer, and another peer via `.on(peer)`) against one `curl --config` "
                "process given every URL, from a threaded `http.server` with HTTP/1.1 "
                "keep-alive and TCP_NODELAY; curl's files are SHA-256 checked inside the "
                "timing (files/s)."
            ),
            "unit": "files/s",
            "better": "higher",
            "rows": [
                row(
                    "peeros/small-local",
                    "peeros",
                    "PeerOS `files.get`, local peer",
                    "small_local",
                    tgt=target("curl", 1.0, ">= 1.0 x curl keep-alive"),
                ),
                row(
                    "peeros/small-remote",
                    "peeros",
                    "PeerOS `files.on(peer).get`, other peer",
                    "small_remote",
                    tgt=target("curl", 1.0, ">= 1.0 x curl keep-alive"),
                ),
                row(
                    "curl/small",
                    "curl",
                    "keep-alive + TCP_NODELAY server, one curl process",
                    "small_curl",
                    base=True,
                ),
            ],
        },
        {
            "id": "small-files-batch",
            "title": f"{args.small:,} files of 1 KiB, in one call",
            "what": (
                f"The same {args.small:,} files fetched with one `client.files.get_many` call "
                "(`peeros get-file` with several `--filename`: up to 1,000 files per request, "
                "each SHA-256 verified, none saved unless all arrive) against the same "
                "`curl --config` run, which is one process given every URL (files/s)."
            ),
            "unit": "files/s",
            "better": "higher",
            "rows": [
                row(
                    "peeros/batch-local",
                    "peeros",
                    "PeerOS `files.get_many`, local peer",
                    "batch_local",
                    tgt=target("curl", 1.0, ">= 1.0 x curl keep-alive"),
                ),
                row(
                    "peeros/batch-remote",
                    "peeros",
                    "PeerOS `files.on(peer).get_many`, other peer",
                    "batch_remote",
                    tgt=target("curl", 1.0, ">= 1.0 x curl keep-alive"),
                ),
                row(
                    "curl/small-batch",
                    "curl",
                    "keep-alive + TCP_NODELAY server, one curl process",
                    "small_curl",
                    base=True,
                ),
            ],
        },
    ]
    curl_version = subprocess.run(["curl", "--version"], capture_output=True, text=True)
    return {
        "schema": resultlib.SCHEMA,
        "benchmark": "files",
        "title": "Files: get-file, put-file, owned upload and small files against curl",
        "command": "python bench/files.py " + " ".join(sys.argv[1:]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "curl": " ".join(curl_version.stdout.split()[:2]),
            "file size": size,
            "cluster": "tracker + 3 peers (LocalCluster), one machine, loopback",
        },
        "systems": {
            "peeros": {"label": "PeerOS", "available": True, "version": __version__},
            "curl": {"label": "curl", "available": True},
            "put_file": {"label": "put-file", "available": True},
        },
        "baselines": ["curl", "put_file"],
        "runs": args.runs,
        "sections": sections,
        "errors": errors,
        "raw": {"size_mb": args.size_mb, "small": args.small, "samples": samples},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--size-mb", type=int, default=1024)
    p.add_argument("--small", type=int, default=1000)
    p.add_argument("--out", type=Path, default=HERE / "results" / "files.json")
    p.add_argument("--no-report", action="store_true")
    args = p.parse_args(argv)
    if shutil.which("curl") is None:
        print("curl is missing: apt-get install curl", file=sys.stderr)
        return 2
    samples: list[dict[str, float]] = []
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="peeros-bench-files-") as tmp:
        work = Path(tmp)
        src = work / "src"
        src.mkdir()
        big = src / "big.bin"
        big_sha = make_file(big, args.size_mb * MiB)
        small_dir = work / "small"
        small_dir.mkdir()
        small_names = [f"f{i:05d}.bin" for i in range(args.small)]
        small_sha = {n: make_file(small_dir / n, SMALL_SIZE) for n in small_names}
        plain = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1"]
        with (
            http_server(plain, src, "big.bin") as big_url,
            http_server(
                [sys.executable, "-c", NODELAY_SERVER], small_dir, small_names[0]
            ) as small_url,
            cluster(work / "cluster", 2 * args.size_mb + 1024) as (c, client),
        ):
            other = c.peers[1].info["peer_id"]
            for n in small_names:
                client.files.put(f"local-{n}", small_dir / n)
                client.files.on(other).put(f"remote-{n}", small_dir / n)
            for run in range(args.runs):
                try:
                    figures = one_run(
                        run,
                        args,
                        work,
                        client,
                        other,
                        big,
                        big_sha,
                        f"{big_url}/big.bin",
                        small_url,
                        small_names,
                        small_sha,
                    )
                except Exception as exc:  # record and go on: a failed run is data too
                    errors.append(f"run {run + 1}: {exc!r}")
                    figures = {}
                samples.append(figures)
                print(
                    f"run {run + 1}: " + json.dumps({k: round(v, 1) for k, v in figures.items()}),
                    flush=True,
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
