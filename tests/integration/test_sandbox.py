"""Sandboxed task workers, with real bubblewrap sandboxes and real processes (no mocks).

Every test but the one of the fallback runs on a pool that insists on bubblewrap
(``use_bwrap=True``: it raises instead of silently falling back), and every pool is closed
even when the test fails. Nothing sleeps to synchronise (:func:`poll` has a deadline); the
only sleep is the measurement window of the pause test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import cloudpickle
import psutil
import pytest

from peeros.compute.workers import (
    Execution,
    PoolClosed,
    SandboxConfig,
    SandboxError,
    TaskOutcome,
    TaskSpec,
    WorkerPool,
)
from peeros.errors import BadRequest

WHO = (
    "import uuid\nTOKEN = uuid.uuid4().hex  # runs once per worker\ndef who():\n    return TOKEN\n"
)
LIST_PROCS = (
    "import os\n"
    "def main():\n"
    "    return sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
)


class Env:
    """A started pool plus helpers; ``secrets`` are world-readable files that must stay hidden."""

    def __init__(self, pool: WorkerPool, secrets: list[Path], data_dir: Path) -> None:
        self.pool = pool
        self.secrets = secrets
        self.data_dir = data_dir
        self._n = 0

    async def start(
        self, program: str, function: str = "main", owner: str = "alice", **kw: Any
    ) -> Execution:
        self._n += 1
        spec = TaskSpec(
            task_id=f"t{self._n}", owner=owner, program=program, function=function, **kw
        )
        return await self.pool.execute(spec)

    async def run(
        self, program: str, function: str = "main", owner: str = "alice", **kw: Any
    ) -> TaskOutcome:
        execution = await self.start(program, function, owner, **kw)
        return await asyncio.wait_for(execution.wait(), 30)

    async def ok(
        self, program: str, function: str = "main", owner: str = "alice", **kw: Any
    ) -> Any:
        outcome = await self.run(program, function, owner, **kw)
        assert outcome.status == "ok", outcome
        return outcome.result


def _secret_dir(parent: Path) -> Path:
    d = Path(tempfile.mkdtemp(prefix="peeros-test-secret-", dir=parent))
    d.chmod(0o755)
    (d / "secret.txt").write_text("s3cret")
    (d / "secret.txt").chmod(0o644)  # world-readable: only hiding protects it
    return d


@asynccontextmanager
async def make_env(tmp_path: Path, **kw: Any) -> AsyncIterator[Env]:
    # One secret where bwrap would not mount anything anyway (the test's tmp dir), and one
    # inside the venv, which IS bound into every sandbox unless hidden.
    secrets = [_secret_dir(tmp_path), _secret_dir(Path(sys.prefix))]
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    config = SandboxConfig(use_bwrap=True, hidden_paths=(data_dir, *secrets))
    pool = WorkerPool(config, **kw)
    try:
        await pool.start()
        yield Env(pool, [s / "secret.txt" for s in secrets], data_dir)
    finally:
        await pool.close()
        for s in secrets:
            shutil.rmtree(s, ignore_errors=True)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with make_env(tmp_path, warm=2, max_workers=4) as e:
        yield e


async def poll(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll ``predicate`` until truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.01)
    raise AssertionError(f"condition not met within {timeout}s")


def gone(pids: list[int]) -> bool:
    def dead(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    return all(dead(p) for p in pids)


def cpu(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


async def assert_still_works(env: Env) -> None:
    assert await env.ok("def main(x):\n    return x + 1\n", args=[41]) == 42


# -- ordinary tasks -------------------------------------------------------------------


async def test_bwrap_is_used_uid_is_nobody_and_no_capabilities(env: Env) -> None:
    assert env.pool.sandboxed is True
    status = await env.ok("def main():\n    return open('/proc/self/status').read()\n")
    fields = dict(line.split(":", 1) for line in status.splitlines())
    assert fields["Uid"].split() == ["65534"] * 4
    assert fields["Gid"].split() == ["65534"] * 4
    assert int(fields["CapEff"], 16) == 0
    assert int(fields["CapPrm"], 16) == 0
    assert int(fields["CapBnd"], 16) == 0
    assert fields["NoNewPrivs"].strip() == "1"
    assert env.pool.stats()["idle"] >= 1


async def test_program_task_with_every_json_type(env: Env) -> None:
    args = [None, True, False, 0, -7, 2.5, "héllo", [], [1, [2, "x"]], {}, {"a": {"b": [None]}}]
    program = "def main(*args, **kwargs):\n    return {'args': list(args), 'kwargs': kwargs}\n"
    kwargs = {"k": {"nested": [1.5, None]}}
    assert await env.ok(program, args=args, kwargs=kwargs) == {"args": args, "kwargs": kwargs}


async def test_result_must_be_json(env: Env) -> None:
    for expr in ["{1, 2}", "float('nan')", "object()"]:
        outcome = await env.run(f"def main():\n    return {expr}\n")
        assert outcome.status == "error"
        assert outcome.error is not None
        assert outcome.error.startswith("result is not JSON serialisable: ")
    await assert_still_works(env)


async def test_cloudpickled_lambda_and_closure(env: Env) -> None:
    base = 10

    def add(x: int, *, y: int = 0) -> dict[str, int]:
        return {"sum": base + x + y}

    for fn, args, kwargs, expected in [
        (lambda a, b: a * b, (6, 7), {}, 42),
        (add, (5,), {"y": 1}, {"sum": 16}),
    ]:
        payload = cloudpickle.dumps((fn, args, kwargs))
        execution = await env.pool.execute(TaskSpec(task_id="p", owner="alice", payload=payload))
        outcome = await asyncio.wait_for(execution.wait(), 30)
        assert outcome.status == "ok", outcome
        assert outcome.result_payload is not None
        assert cloudpickle.loads(outcome.result_payload) == expected


async def test_exception_gives_error_and_traceback_and_the_worker_stays(env: Env) -> None:
    program = WHO + "def main(x):\n    return helper(x)\ndef helper(x):\n    return x / 0\n"
    token = await env.ok(program, "who")
    outcome = await env.run(program, args=[1])
    assert outcome.status == "error"
    assert outcome.error == "ZeroDivisionError: division by zero"
    assert outcome.traceback is not None
    assert 'File "<task>", line 6, in main' in outcome.traceback
    assert "in helper" in outcome.traceback
    assert "sandbox.py" not in outcome.traceback
    for code in ["raise SystemExit(3)", "raise RecursionError('deep')", "raise KeyboardInterrupt"]:
        outcome = await env.run(f"def main():\n    {code}\n")
        assert outcome.status == "error", outcome
    assert await env.ok(program, "who") == token  # the same worker served all of them


async def test_workers_reused_per_owner_never_shared(tmp_path: Path) -> None:
    async with make_env(tmp_path, warm=1, max_workers=2) as env:
        alice = {await env.ok(WHO, "who", owner="alice") for _ in range(3)}
        assert len(alice) == 1  # reused
        bob = {await env.ok(WHO, "who", owner="bob") for _ in range(3)}
        assert len(bob) == 1 and not bob & alice
        # At max_workers, carol's task recycles an idle worker of another owner.
        carol = await env.ok(WHO, "who", owner="carol")
        assert carol not in alice | bob
        assert env.pool.stats()["recycled"] >= 1
        assert await env.ok(WHO, "who", owner="carol") == carol


async def test_concurrent_tasks_of_one_owner_use_separate_workers(env: Env) -> None:
    program = WHO + "import time\ndef main():\n    time.sleep(0.2)\n    return TOKEN\n"
    outcomes = await asyncio.gather(*(env.run(program, owner="alice") for _ in range(3)))
    assert len({o.result for o in outcomes}) == 3
    assert env.pool.stats()["total"] <= 4


# -- containment -----------------------------------------------------------------------


async def test_memory_hog_gets_memory_error(env: Env) -> None:
    program = "def main():\n    b = bytearray(4 << 30)\n    return len(b)\n"
    outcome = await env.run(program, memory_bytes=256 << 20)
    assert outcome.status == "error"
    assert outcome.error == "MemoryError"
    await assert_still_works(env)


async def test_cpu_seconds_limit(env: Env) -> None:
    outcome = await env.run("def main():\n    while True:\n        pass\n", cpu_seconds=0.3)
    assert outcome.status == "error"
    assert outcome.error is not None and outcome.error.startswith("CpuTimeExceeded")
    await assert_still_works(env)


async def test_infinite_loop_killed_frees_the_cpu_within_a_second(env: Env) -> None:
    execution = await env.start("def main():\n    while True:\n        pass\n")
    pids = await poll(lambda: execution.pids if len(execution.pids) >= 2 else None)
    await poll(lambda: cpu(pids[-1]) > 0.05)
    killed_at = time.monotonic()
    execution.kill("timed out after 1s")
    outcome = await asyncio.wait_for(execution.wait(), 5)
    await poll(lambda: gone(pids), timeout=1.0)
    assert time.monotonic() - killed_at < 1.0
    assert outcome.status == "killed"
    assert outcome.error == "timed out after 1s"
    assert env.pool.stats()["killed"] == 1
    await assert_still_works(env)
    await poll(lambda: env.pool.stats()["idle"] >= 2)  # replaced in the background


async def test_fork_bomb_is_stopped_by_nproc_and_cleaned_up(env: Env) -> None:
    program = WHO + LIST_PROCS + "def bomb():\n    while True:\n        os.fork()\n"
    token = await env.ok(program, "who")
    assert await env.ok(program) == [1, 2]  # the namespace init and the worker
    outcome = await env.run(program, "bomb")
    assert outcome.status == "error"
    assert outcome.error is not None and outcome.error.startswith("BlockingIOError")
    assert await env.ok(program) == [1, 2]  # nothing left in the sandbox...
    assert await env.ok(program, "who") == token  # ...of the very same worker


async def test_writes_outside_the_working_dir_are_refused(env: Env) -> None:
    targets = [
        Path("/work/main/src/peeros/pwned"),
        Path("/usr/pwned"),
        Path(sys.prefix) / "pwned",
        Path("/etc/pwned"),
        Path("/pwned"),
        env.data_dir / "pwned",
        Path(__file__).parent / "pwned",
    ]
    program = (
        "import os\n"
        "def main(paths):\n"
        "    out = {}\n"
        "    for p in paths:\n"
        "        try:\n"
        "            with open(p, 'w') as f:\n"
        "                f.write('x')\n"
        "            out[p] = 'written'\n"
        "        except OSError as e:\n"
        "            out[p] = type(e).__name__\n"
        "    with open('here.txt', 'w') as f:\n"
        "        f.write('ok')\n"
        "    out['cwd'] = os.getcwd()\n"
        "    return out\n"
    )
    result = await env.ok(program, args=[[str(t) for t in targets]])
    assert result.pop("cwd").startswith("/tmp/task-")
    assert set(result.values()) <= {"OSError", "PermissionError", "FileNotFoundError"}, result
    for t in targets:
        assert not t.exists()


async def test_no_network_to_host_loopback(env: Env) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        program = (
            "import socket\ndef main(port):\n"
            "    socket.create_connection(('127.0.0.1', port), timeout=3).close()\n"
        )
        outcome = await env.run(program, args=[port])
        assert outcome.status == "error"
        assert outcome.error is not None and "Error" in outcome.error  # unreachable/refused
        with pytest.raises(BlockingIOError):
            listener.accept()


async def test_hidden_paths_are_not_readable(env: Env) -> None:
    for secret in env.secrets:
        assert secret.read_text() == "s3cret"  # readable on the host
    program = (
        "def main(path):\n"
        "    try:\n"
        "        return open(path).read()\n"
        "    except OSError as e:\n"
        "        return type(e).__name__\n"
    )
    for secret in env.secrets:
        assert await env.ok(program, args=[str(secret)]) in {"PermissionError", "FileNotFoundError"}


async def test_os_exit_and_segfault_crash_and_are_replaced(env: Env) -> None:
    outcome = await env.run("import os\ndef main():\n    os._exit(3)\n")
    assert (outcome.status, outcome.error) == ("crashed", "worker process exited with status 3")
    outcome = await env.run("import ctypes\ndef main():\n    ctypes.string_at(0)\n")
    assert (outcome.status, outcome.error) == ("crashed", "worker process died with signal SIGSEGV")
    assert env.pool.stats()["crashed"] == 2
    await assert_still_works(env)
    await poll(lambda: env.pool.stats()["idle"] >= 2)


async def test_leftover_thread_recycles_the_worker(env: Env) -> None:
    program = WHO + (
        "import threading, time\n"
        "def main():\n"
        "    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
        "    return TOKEN\n"
    )
    token = await env.ok(program)
    await poll(lambda: env.pool.stats()["recycled"] == 1)
    assert await env.ok(program, "who") != token


# -- pause / resume / kill -------------------------------------------------------------

BUSY_WITH_CHILD = (
    "import subprocess, sys\n"
    "def main():\n"
    "    subprocess.Popen([sys.executable, '-c', 'while True: pass'])\n"
    "    while True:\n"
    "        pass\n"
)
BUSY_WITH_SETSID_GRANDCHILD = (
    "import os\n"
    "def main():\n"
    "    if os.fork() == 0:\n"
    "        os.setsid()\n"
    "        if os.fork() == 0:\n"
    "            while True:\n"
    "                pass\n"
    "        os._exit(0)\n"
    "    while True:\n"
    "        pass\n"
)


def _busy(execution: Execution) -> list[int] | None:
    """The sandbox's running task processes, once there are two busy ones."""
    busy = []
    for pid in execution.pids:
        try:
            p = psutil.Process(pid)
            if p.status() != psutil.STATUS_ZOMBIE and cpu(pid) > 0.05:
                busy.append(pid)
        except psutil.NoSuchProcess:
            pass
    return busy if len(busy) >= 2 else None


def _all_stopped(pids: list[int]) -> bool:
    return all(psutil.Process(p).status() == psutil.STATUS_STOPPED for p in pids)


@pytest.mark.parametrize("program", [BUSY_WITH_CHILD, BUSY_WITH_SETSID_GRANDCHILD])
async def test_pause_stops_the_task_and_its_children(env: Env, program: str) -> None:
    execution = await env.start(program)
    busy = await poll(lambda: _busy(execution))
    execution.pause()
    execution.pause()  # idempotent
    await poll(lambda: _all_stopped(busy), timeout=1.0)  # signal delivery is asynchronous
    before = [cpu(p) for p in busy]
    await asyncio.sleep(0.3)  # measurement window: no CPU may be used while paused
    assert [cpu(p) for p in busy] == pytest.approx(before, abs=0.02)
    execution.resume()
    execution.resume()
    await poll(lambda: all(cpu(p) > b + 0.05 for p, b in zip(busy, before, strict=True)))
    execution.pause()  # killing a paused sandbox works too
    pids = execution.pids
    execution.kill("cancelled")
    outcome = await asyncio.wait_for(execution.wait(), 5)
    assert (outcome.status, outcome.error) == ("killed", "cancelled")
    await poll(lambda: gone(pids), timeout=1.0)
    await assert_still_works(env)


async def test_close_kills_everything_and_refuses_new_tasks(tmp_path: Path) -> None:
    async with make_env(tmp_path, warm=1, max_workers=2) as env:
        execution = await env.start(BUSY_WITH_SETSID_GRANDCHILD)
        await poll(lambda: _busy(execution))
        pids = execution.pids
        await env.pool.close()
        outcome = await asyncio.wait_for(execution.wait(), 5)
        assert (outcome.status, outcome.error) == ("killed", "worker pool closed")
        assert gone(pids)
        assert env.pool.stats()["total"] == 0
        with pytest.raises(PoolClosed):
            await env.start("def main():\n    return 1\n")


async def test_tasks_leave_no_files_behind(env: Env) -> None:
    program = (
        "import os\ndef main():\n    open('f', 'w').write('x')\n    return os.listdir('/tmp')\n"
    )
    # (bind mounts of a checkout that lives under the host's /tmp may show up too)
    first = [d for d in await env.ok(program) if d.startswith("task-")]
    second = [d for d in await env.ok(program) if d.startswith("task-")]
    assert len(first) == 1 and len(second) == 1 and first != second  # only its own dir


async def test_a_pristine_workdir_is_reused_and_a_used_one_never_is(env: Env) -> None:
    look = "import os\ndef main():\n    return [os.getcwd(), sorted(os.listdir('.'))]\n"
    leave = "import os\ndef main():\n    open('.secret', 'w').write('x')\n    return os.getcwd()\n"
    tidy = "import os\ndef main():\n    open('t', 'w').write('x')\n    os.remove('t')\n"
    cwd1, seen1 = await env.ok(look)
    cwd2, seen2 = await env.ok(look)  # the same worker (one owner): the same, empty dir
    assert (seen1, seen2) == ([], []) and cwd1 == cwd2
    await env.ok(tidy + "    return 1\n")
    cwd3, seen3 = await env.ok(look)
    assert cwd3 == cwd1 and seen3 == []  # left as found: still reused
    dirty = await env.ok(leave)
    cwd4, seen4 = await env.ok(look)
    assert dirty == cwd1 and cwd4 != cwd1 and seen4 == []  # a file left: a new dir


async def test_invalid_tasks_are_refused_before_reaching_a_worker(env: Env) -> None:
    for spec in [
        TaskSpec(task_id="x", owner="alice"),
        TaskSpec(task_id="x", owner="alice", program="def main(): pass"),
        TaskSpec(task_id="x", owner="alice", program="x", function="f", payload=b"p"),
        TaskSpec(task_id="x", owner="alice", program="x", function="f", args=[{1, 2}]),
        TaskSpec(task_id="x", owner="alice", program="x", function="f", args=[float("inf")]),
    ]:
        with pytest.raises(BadRequest):
            await env.pool.execute(spec)
    assert env.pool.stats()["busy"] == 0


async def test_a_hidden_path_that_would_hide_the_interpreter_is_an_error() -> None:
    pool = WorkerPool(SandboxConfig(hidden_paths=(Path(sys.prefix).parent,)))
    try:
        with pytest.raises(SandboxError, match="which task workers need"):
            await pool.start()
    finally:
        await pool.close()


async def test_fallback_without_bwrap_still_isolates_uid_and_contains_crashes() -> None:
    async with WorkerPool(SandboxConfig(use_bwrap=False), warm=1, max_workers=2) as pool:
        assert pool.sandboxed is False
        spec = TaskSpec(
            task_id="u",
            owner="a",
            program="import os\ndef f():\n    return os.getuid()\n",
            function="f",
        )
        outcome = await asyncio.wait_for((await pool.execute(spec)).wait(), 30)
        assert (outcome.status, outcome.result) == (
            "ok",
            65534 if os.geteuid() == 0 else os.getuid(),
        )
        spec = TaskSpec(
            task_id="c", owner="a", program="import os\ndef f():\n    os._exit(3)\n", function="f"
        )
        outcome = await asyncio.wait_for((await pool.execute(spec)).wait(), 30)
        assert (outcome.status, outcome.error) == ("crashed", "worker process exited with status 3")


async def test_start_now_refuses_a_spec_no_worker_can_take_and_binds_nothing(env: Env) -> None:
    """Regression (review): ``start_now`` bound a worker and then raised from
    ``encode_task`` (args with NaN); it now returns None first, so the dispatcher's
    ``execute`` reports the error and no worker is left bound to nothing."""
    await poll(lambda: env.pool.can_start_now("alice"))
    idle = env.pool.stats()["idle"]
    spec = TaskSpec(
        task_id="f" * 32,
        owner="alice",
        program="def main(x):\n    return x\n",
        function="main",
        args=[float("nan")],
    )
    assert env.pool.start_now(spec) is None
    assert env.pool.stats()["idle"] == idle
    with pytest.raises(BadRequest):
        await env.pool.execute(spec)
    await assert_still_works(env)
