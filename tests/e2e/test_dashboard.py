"""The web dashboard in a real browser (Debian's chromium driven by Playwright).

One cluster (tracker + 2 peers) and one dashboard process serve every test of this
module; each test gets a fresh browser context that logs in with the token. Every
request the browser makes is recorded: one to a host other than 127.0.0.1 fails the test.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from peeros.client import Client
from peeros.client_share import Share
from peeros.launcher import NodeProcess, dashboard_login_url, start_dashboard, start_peer
from peeros.protocol import TaskRequest
from tests.conftest import FAST_PEER, Nodes, token_of, wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PAGES = ["/", "/tasks", "/scheduler", "/memory", "/kernel", "/files", "/stats"]
LOCAL_SCHEMES = {"data", "blob", "about"}


@dataclass
class Dash:
    base: str
    login: str
    token: str
    peer_dir: Path
    other_dir: Path
    client: Client
    browser: Browser
    nodes: Nodes
    tracker: NodeProcess
    external: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def dash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dash]:
    # The same harness as the ``nodes`` fixture, shared by the module to keep it fast.
    nodes = Nodes(tmp_path_factory.mktemp("dashboard"))
    try:
        cluster = nodes.cluster(2)
        assert cluster.tracker is not None
        peer_dir = cluster.peers[0].data_dir
        board = start_dashboard(peer_dir, port=0, wait=False)
        nodes.started.append(board)
        wait_until(lambda: (peer_dir / "dashboard.json").exists(), timeout=30)
        board.info = json.loads((peer_dir / "dashboard.json").read_text())
        assert board.info["pid"] == board.pid
        token = (peer_dir / "dashboard.token").read_text().strip()
        assert (peer_dir / "dashboard.token").stat().st_mode & 0o777 == 0o600
        with Client(data_dir=peer_dir) as client, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield Dash(
                    board.info["url"].rstrip("/"),
                    dashboard_login_url(board),
                    token,
                    peer_dir,
                    cluster.peers[1].data_dir,
                    client,
                    browser,
                    nodes,
                    cluster.tracker,
                )
            finally:
                browser.close()
    finally:
        nodes.stop_all()


def new_page(dash: Dash, width: int = 1280, height: int = 720) -> Page:
    """A fresh browser context; every request it makes is checked for its host."""
    context = dash.browser.new_context(viewport={"width": width, "height": height})

    def record(url: str) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in LOCAL_SCHEMES and parsed.hostname != "127.0.0.1":
            dash.external.append(url)

    context.on("request", lambda request: record(request.url))
    page = context.new_page()
    page.on("websocket", lambda ws: record(ws.url))
    return page


def log_in(page: Page, dash: Dash) -> None:
    """Visit the login URL without rendering a page: the cookie lands in the context."""
    response = page.context.request.get(dash.login)
    assert response.ok, response.status
    response.dispose()


def visit(page: Page, dash: Dash, path: str) -> None:
    page.goto(dash.base + path)
    # Wait until the page showed data from the peer once (its first live refresh).
    page.wait_for_selector("[data-live=ok]", state="attached", timeout=15_000)


def no_horizontal_overflow(page: Page) -> None:
    width, viewport = page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert width <= viewport, f"{page.url} overflows: {width}px in a {viewport}px window"


@pytest.fixture
def page(dash: Dash) -> Iterator[Page]:
    p = new_page(dash)
    log_in(p, dash)
    try:
        yield p
        no_horizontal_overflow(p)  # at 1280x720, on whatever page the test ended
    finally:
        p.context.close()
    assert dash.external == [], f"requests left 127.0.0.1: {dash.external}"


def status_of(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code)


def test_without_the_token_every_request_is_401(dash: Dash) -> None:
    authorized = {"Authorization": f"Bearer {dash.token}"}
    with urllib.request.urlopen(
        urllib.request.Request(dash.base + "/", headers=authorized), timeout=10
    ) as resp:
        html = resp.read().decode()
    asset = re.search(r'(/_nicegui/[^"\']+\.(?:js|css))', html)
    assert asset, "the page names no NiceGUI asset"
    assert status_of(dash.base + asset.group(1), authorized) == 200
    urls = [
        *(dash.base + p for p in PAGES),
        dash.base + asset.group(1),
        dash.base + "/_nicegui_ws/socket.io/?EIO=4&transport=polling",
        dash.base + "/files/download/anything",
        dash.base + "/?token=wrong",
    ]
    for url in urls:
        assert status_of(url) == 401, url
    assert status_of(dash.base + "/", {"Cookie": "peeros_dashboard_1=forged"}) == 401


def test_login_sets_an_httponly_strict_cookie(dash: Dash) -> None:
    page = new_page(dash)
    try:
        page.goto(dash.login)
        expect(page.locator(".q-header")).to_contain_text("Cluster")
        expect(page).not_to_have_url(re.compile("token="))  # dropped from the address bar
        (cookie,) = page.context.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert dash.token not in cookie["value"]
        visit(page, dash, "/kernel")  # no token in the URL: the cookie is enough
        expect(page.get_by_text("Deadlock detection")).to_be_visible()
    finally:
        page.context.close()
    assert dash.external == [], f"requests left 127.0.0.1: {dash.external}"


def test_submit_a_program_and_see_its_result(page: Page, dash: Dash) -> None:
    visit(page, dash, "/tasks")
    page.locator(".cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text("def main(x): return x * x\n")
    page.get_by_label("Args (JSON list)").fill("[5]")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_test_id("task-status")).to_have_text("DONE", timeout=20_000)
    expect(page.get_by_test_id("task-result")).to_contain_text("25")

    page.get_by_label("Args (JSON list)").fill("[5")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_test_id("error").filter(has_text="invalid JSON")).to_be_visible()
    page.get_by_label("Args (JSON list)").fill("[5]")
    for box in ("Confidential (this peer only)", "Elsewhere (another peer)"):
        page.get_by_text(box, exact=True).click()
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_test_id("error").filter(has_text="both confidential")).to_be_visible()
    page.get_by_text("Confidential (this peer only)", exact=True).click()  # elsewhere: fine
    page.get_by_label("Args (JSON list)").fill("[0]")
    page.locator(".cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text("def main(x): return 1 / x\n")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_test_id("task-status")).to_have_text("FAILED", timeout=20_000)
    expect(page.get_by_text("Remote traceback")).to_be_visible()
    expect(page.get_by_text("ZeroDivisionError").first).to_be_visible()


def test_upload_then_download_is_byte_equal(page: Page, dash: Dash) -> None:
    data = os.urandom(150_000) + bytes(range(256))
    visit(page, dash, "/files")
    expect(page.get_by_text("Shared files")).to_be_visible()
    expect(page.get_by_text("Not available yet")).to_have_count(0)
    page.get_by_test_id("file-upload").locator("input[type=file]").set_input_files(
        files=[{"name": "blob.bin", "mimeType": "application/octet-stream", "buffer": data}]
    )
    row = page.locator("tr", has_text="blob.bin")
    expect(row).to_be_visible(timeout=15_000)
    assert [f.name for f in dash.client.files.list()] == ["blob.bin"]
    with page.expect_download() as download:
        row.get_by_test_id("file-download").click()
    assert Path(download.value.path()).read_bytes() == data


def test_owned_file_upload_lists_its_holder_and_downloads_decrypted(page: Page, dash: Dash) -> None:
    data = os.urandom(70_000)
    visit(page, dash, "/files")
    page.get_by_label("Replicas").fill("1")  # two peers: one other peer holds the copy
    page.get_by_test_id("owned-upload").locator("input[type=file]").set_input_files(
        files=[{"name": "secret.bin", "mimeType": "application/octet-stream", "buffer": data}]
    )
    row = page.locator("tr", has_text="secret.bin")
    expect(row).to_contain_text("1 live / 1", timeout=15_000)
    (record,) = dash.client.owned.list()
    assert record.name == "secret.bin" and record.holders[0].peer_id[:8] in row.inner_text()
    with page.expect_download() as download:
        row.get_by_test_id("owned-download").click()
    assert Path(download.value.path()).read_bytes() == data


def test_shared_file_lookup_download_and_stats(page: Page, dash: Dash) -> None:
    data = os.urandom(300_000)
    shared = dash.other_dir / "shared"
    shared.mkdir(exist_ok=True)
    (shared / "dash-shared.bin").write_bytes(data)
    with Client(data_dir=dash.other_dir) as other:
        assert "dash-shared.bin" in Share(other).rescan().added
    wait_until(lambda: Share(dash.client).lookup("dash-shared.bin").hits, timeout=15)
    (dash.peer_dir / "shared").mkdir(exist_ok=True)
    (dash.peer_dir / "shared" / "mine.txt").write_bytes(b"mine\n" * 10)

    visit(page, dash, "/files")
    listing = page.get_by_test_id("share-listing")
    page.get_by_role("button", name="Rescan").click()
    expect(listing.locator("tr", has_text="mine.txt")).to_contain_text("local", timeout=10_000)

    page.get_by_role("button", name="Look up").click()  # empty query
    expect(page.get_by_test_id("error").filter(has_text="the query is empty")).to_be_visible()
    page.get_by_test_id("share-query").fill("shared.b")
    page.get_by_role("button", name="Look up").click()
    row = page.get_by_test_id("share-hits").locator("tr", has_text="dash-shared.bin")
    expect(row).to_contain_text("293.0 KiB")
    sha = Share(dash.client).lookup("dash-shared.bin").hits[0].sha256
    expect(row).to_contain_text(sha[:16])
    expect(row).to_contain_text(
        Share(dash.client).lookup(sha256=sha).hits[0].holders[0].peer_id[:8]
    )
    row.get_by_test_id("share-download").click()
    result = page.get_by_test_id("share-result")
    expect(result).to_contain_text("300000 bytes", timeout=30_000)
    expect(result).to_contain_text("verified")
    expect(result).to_contain_text("MB/s")
    mine = listing.locator("tr", has_text="dash-shared.bin").filter(has_text="downloaded")
    expect(mine).to_contain_text("300000", timeout=10_000)
    assert (dash.peer_dir / "downloaded" / "dash-shared.bin").read_bytes() == data

    page.get_by_label("Match").click()
    page.get_by_role("option", name="sha256", exact=True).click()
    page.get_by_test_id("share-query").fill("0" * 64)
    page.get_by_role("button", name="Look up").click()
    expect(page.get_by_test_id("error").filter(has_text="no live peer shares")).to_be_visible()
    page.get_by_label("TTL (hops)").fill("99")
    page.get_by_role("button", name="Flood search").click()
    expect(page.get_by_test_id("error").filter(has_text="TTL must be")).to_be_visible()
    page.get_by_test_id("share-query").fill("xyz")
    page.get_by_role("button", name="Look up").click()
    expect(page.get_by_test_id("error").filter(has_text="64 hex digits")).to_be_visible()

    visit(page, dash, "/stats")
    expect(page.get_by_test_id("share-queries")).to_contain_text("shared.b")
    expect(page.get_by_test_id("share-downloads")).to_contain_text("dash-shared.bin")
    expect(page.get_by_text("Search time mean")).to_be_visible()
    expect(page.get_by_text("Speed max")).to_be_visible()


def test_set_and_get_a_memory_key(page: Page, dash: Dash) -> None:
    visit(page, dash, "/memory")
    page.get_by_label("Key", exact=True).fill("dash:k")
    page.get_by_label("Value (JSON, or any text)").fill('{"a": [1, 2]}')
    page.get_by_role("button", name="Set").click()
    wait_until(lambda: dash.client.memory.get("dash:k") == {"a": [1, 2]})

    dash.client.memory["dash:other"] = "from the client"
    page.get_by_label("Key", exact=True).fill("dash:other")
    page.get_by_role("button", name="Get").click()
    expect(page.get_by_test_id("mem-output")).to_contain_text("from the client")

    page.get_by_label("Key", exact=True).fill("dash:missing")
    page.get_by_role("button", name="Get").click()
    expect(page.get_by_test_id("error").filter(has_text="not found")).to_be_visible()


def test_switch_the_scheduler_and_see_it_in_sched_show(page: Page, dash: Dash) -> None:
    visit(page, dash, "/scheduler")
    page.get_by_label("Policy", exact=True).click()
    page.get_by_role("option", name="rr", exact=True).click()
    page.get_by_label("Quantum (ms)").fill("50")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_test_id("active-policy")).to_have_text("rr (50 ms)")
    shown = subprocess.run(
        [sys.executable, "-m", "peeros", "sched", "show", "--data-dir", str(dash.peer_dir)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert "policy        rr (quantum 50 ms" in shown

    policy = page.get_by_label("Policy", exact=True)
    policy.click()
    policy.press_sequentially("bogus", delay=30)
    policy.press("Enter")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_test_id("error").filter(has_text="unknown policy 'bogus'")).to_be_visible()
    dash.client.set_sched("fcfs")

    page.get_by_role("button", name="Simulate").click()
    expect(page.get_by_text("average waiting 17/3").or_(page.get_by_text("5.66"))).to_be_visible()


def test_a_running_task_is_in_the_process_tree_and_can_be_killed(page: Page, dash: Dash) -> None:
    program = "import time\n\ndef nap_for_dashboard():\n    time.sleep(60)\n"
    (task_id,) = dash.client.submit_requests(
        [TaskRequest(program=program, function="nap_for_dashboard", timeout=120)]
    )
    wait_until(lambda: dash.client.task(task_id).status == "RUNNING")
    visit(page, dash, "/kernel")
    node = page.get_by_test_id("proc-tree").get_by_text(task_id[:12])
    expect(node).to_contain_text("nap_for_dashboard")
    expect(node).to_contain_text("RUNNING")
    node.click()
    page.get_by_test_id("proc-kill").click()
    wait_until(lambda: dash.client.task(task_id).status == "CANCELLED", timeout=15)
    expect(page.get_by_test_id("proc-tree").get_by_text(task_id[:12])).to_have_count(0)


def test_every_page_fits_a_phone_screen(dash: Dash) -> None:
    page = new_page(dash, 390, 844)
    log_in(page, dash)
    try:
        for path in PAGES:
            visit(page, dash, path)
            expect(page.locator(".q-header")).to_contain_text("PeerOS")
            no_horizontal_overflow(page)
            assert not page.get_by_text("Traceback").count(), path
    finally:
        page.context.close()
    assert dash.external == [], f"requests left 127.0.0.1: {dash.external}"


def test_peer_web_ui_serves_a_dashboard_that_exits_with_its_peer(dash: Dash) -> None:
    extra = [*FAST_PEER, "--web-ui", "--web-port", "0"]
    # start_peer, not nodes.peer: that one runs asyncio.run, and Playwright's sync API
    # keeps an event loop running in this thread.
    node = start_peer(
        dash.nodes.root / "web-ui-peer",
        dash.tracker.info["address"],
        token_of(dash.tracker),
        extra=extra,
    )
    dash.nodes.started.append(node)
    info_path = node.data_dir / "dashboard.json"
    wait_until(lambda: info_path.exists(), timeout=30)
    info = json.loads(info_path.read_text())
    token = (node.data_dir / "dashboard.token").read_text().strip()
    assert status_of(info["url"]) == 401
    wait_until(lambda: status_of(info["url"], {"Authorization": f"Bearer {token}"}) == 200)
    os.kill(node.pid, signal.SIGKILL)  # the peer alone, not its process group
    node.proc.wait(timeout=10)

    def gone() -> bool:
        try:
            os.kill(info["pid"], 0)
        except ProcessLookupError:
            return True
        return Path(f"/proc/{info['pid']}/stat").read_text().split()[2] == "Z"

    wait_until(gone, timeout=15)
