"""Regenerate docs/screenshots/<page>.png: a small cluster with some activity, every
dashboard page opened in Debian's chromium at 1280x720 (``make screenshots``)."""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

from peeros.client import Client
from peeros.client_share import Share
from peeros.launcher import LocalCluster, dashboard_login_url, start_dashboard, stop
from peeros.protocol import TaskRequest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

BUSY = """
import time

def main(seconds):
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return n
"""

NAP = "import time\n\ndef nap(seconds):\n    time.sleep(seconds)\n    return seconds\n"

PHILOSOPHER = """
import time
from peeros import task

def philosopher(first, second):
    task.sem_wait(first)
    time.sleep(1.0)
    task.sem_wait(second, timeout=120)
    return "ate"
"""


def wait_for(what: str, predicate: Callable[[], Any], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # not ready yet
            if predicate():
                return
        time.sleep(0.1)
    raise SystemExit(f"screenshots: timed out waiting for {what}")


def activity(client: Client) -> None:
    """Things for every page to show: tasks, keys, files, processes, IPC, a deadlock."""
    client.set_sched("rr", quantum_ms=50)
    client.submit_requests(
        [TaskRequest(program=BUSY, function="main", args=[4 + i % 3]) for i in range(8)]
    )
    client.submit_requests(
        [TaskRequest(program=NAP, function="nap", args=[0.2], confidential=True) for _ in range(10)]
    )
    client.submit_requests(
        [TaskRequest(program="def main():\n    return 1 / 0\n", function="main")]
    )
    client.submit_requests(
        [
            TaskRequest(
                program=NAP,
                function="nap",
                args=[120],
                confidential=True,
                memory_mb=300,
                claims={"cpu": 1, "memory_mb": 600},
                holds={"cpu": 1, "memory_mb": 300},
            )
        ]
    )
    for key, value in {
        "user:1": {"name": "Ada", "role": "admin"},
        "user:2": {"name": "Linus", "role": "dev"},
        "config": {"replicas": 3, "policy": "rr"},
        "counter": 42,
    }.items():
        client.memory[key] = value
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in {
            "notes.txt": b"PeerOS shares CPU, memory and disk.\n" * 100,
            "dataset.bin": bytes(range(256)) * 4096,
        }.items():
            path = Path(tmp) / name
            path.write_bytes(data)
            client.files.put(name, path)
        client.owned.upload(Path(tmp) / "notes.txt", "diary.txt", replicas=2)
    for name, size in (("cache", 500), ("buffers", 700), ("heap", 400), ("stack", 900)):
        client.kernel.alloc("alloc", name=name, size=size)
    client.kernel.alloc("free", name="buffers")
    client.kernel.alloc("free", name="stack")
    shell = client.kernel.create("shell")
    for child in ("editor", "compiler"):
        client.kernel.create(child, parent=shell["pid"])
    for fork in ("fork-a", "fork-b"):
        client.ipc.sem_create(fork, value=1)
    client.ipc.sem_create("printer", value=2)
    client.submit_requests(
        [
            TaskRequest(program=PHILOSOPHER, function="philosopher", args=[a, b], confidential=True)
            for a, b in (("fork-a", "fork-b"), ("fork-b", "fork-a"))
        ]
    )
    wait_for("the deadlock", lambda: client.kernel.deadlock()["deadlocked"], timeout=60)
    client.ipc.queue_create("jobs", capacity=8)
    for i in range(3):
        client.ipc.send("jobs", {"job": i})


def share_activity(client: Client, peer_dirs: list[Path]) -> None:
    """Shared files on every peer, lookups and downloads: for the Files and Stats pages."""
    for i, peer_dir in enumerate(peer_dirs):
        shared = peer_dir / "shared"
        shared.mkdir(parents=True, exist_ok=True)
        files = {
            f"song-{i}.ogg": bytes([i]) * (150_000 * (i + 1)),
            f"paper-{i}.pdf": b"%PDF-1.4 PeerOS\n" * (2_000 * (i + 1)),
        }
        for name, data in files.items():
            (shared / name).write_bytes(data)
        with Client(data_dir=peer_dir) as peer:
            Share(peer).rescan()
    share = Share(client)
    wait_for("the shared index", lambda: len(share.lookup("*", "glob").hits) >= 6)
    share.lookup("song", "substring")
    share.lookup("paper-1.pdf")
    share.lookup("*.ogg", "glob")
    for name in ("song-1.ogg", "song-2.ogg", "paper-2.pdf"):
        share.download(name)


def shoot(page: Page, base: str, path: str, out: Path) -> None:
    page.goto(base + path)
    page.wait_for_selector("[data-live=ok]", state="attached", timeout=20_000)
    page.wait_for_timeout(1500)  # let charts draw and one more live refresh land
    page.screenshot(path=str(out), full_page=True)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="peeros-shots-") as tmp:
        cluster = LocalCluster(Path(tmp) / "cluster")
        cluster.start(3, peer_extra=["--heartbeat-interval", "0.5"])
        board = None
        try:
            peer_dir = cluster.peers[0].data_dir
            board = start_dashboard(peer_dir, port=0)
            base = str(board.info["url"]).rstrip("/")
            with Client(data_dir=peer_dir) as client:
                wait_for("3 live peers", lambda: sum(p.alive for p in client.peers()) == 3)
                activity(client)
                share_activity(client, [p.data_dir for p in cluster.peers])
                with sync_playwright() as pw:
                    browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
                    page = browser.new_page(viewport={"width": 1280, "height": 720})
                    page.goto(dashboard_login_url(board))
                    page.wait_for_selector("[data-live=ok]", state="attached")
                    page.wait_for_timeout(4000)  # a few load samples for the chart
                    shoot(page, base, "/", args.out / "cluster.png")

                    page.goto(base + "/tasks")
                    page.get_by_role("button", name="Submit").click()
                    page.get_by_test_id("task-result").wait_for(timeout=30_000)
                    shoot_current(page, args.out / "tasks.png")

                    page.goto(base + "/scheduler")
                    page.get_by_role("button", name="Simulate").click()
                    page.get_by_text("average waiting").wait_for()
                    shoot_current(page, args.out / "scheduler.png")

                    page.goto(base + "/memory")
                    page.get_by_label("Key", exact=True).fill("user:1")
                    page.get_by_role("button", name="Get").click()
                    page.get_by_test_id("mem-output").wait_for()
                    shoot_current(page, args.out / "memory.png")

                    shoot(page, base, "/kernel", args.out / "kernel.png")
                    page.goto(base + "/files")
                    page.wait_for_selector("[data-live=ok]", state="attached", timeout=20_000)
                    page.get_by_test_id("share-query").fill("paper")
                    page.get_by_role("button", name="Look up").click()
                    hits = page.get_by_test_id("share-hits").locator("tr", has_text="paper-1.pdf")
                    hits.wait_for()
                    hits.get_by_test_id("share-download").click()
                    page.get_by_test_id("share-result").get_by_text("verified").wait_for()
                    page.evaluate("window.scrollTo(0, 0)")
                    # the "downloaded" notice fades out
                    page.locator(".q-notification").wait_for(state="detached", timeout=20_000)
                    shoot_current(page, args.out / "files.png")
                    shoot(page, base, "/stats", args.out / "stats.png")
                    phone = browser.new_page(viewport={"width": 390, "height": 844})
                    phone.goto(dashboard_login_url(board))
                    shoot(phone, base, "/tasks", args.out / "phone-tasks.png")
                    browser.close()
        finally:
            if board is not None:
                stop([board])
            cluster.stop()


def shoot_current(page: Page, out: Path) -> None:
    page.wait_for_timeout(1000)
    page.screenshot(path=str(out), full_page=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
