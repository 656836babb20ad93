"""The worker's per-task shortcuts never let anything through (real sandboxes, no mocks).

After a task, the worker skips the clean-up when ``ns_last_pid`` says the task created no
process and no thread, reuses the working directory when one lstat says it is still
empty, and charges a task the CPU of the children it reaped (``TaskWatch`` and
``_release_workdir`` in :mod:`peeros.compute.sandbox`). Each test here would fail if one
of those shortcuts were taken when it must not be.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_sandbox import LIST_PROCS, WHO, Env, make_env

#: Finds the worker's descriptor of ns_last_pid from inside a task.
FIND_FD = (
    "import os\n"
    "def _fd(name):\n"
    "    for fd in os.listdir('/proc/self/fd'):\n"
    "        try:\n"
    "            if os.readlink(f'/proc/self/fd/{fd}') == name:\n"
    "                return int(fd)\n"
    "        except OSError:\n"
    "            pass\n"
    "    raise LookupError(name)\n"
)

LEFTOVERS = {
    "child": "    if os.fork() == 0:\n        time.sleep(60)\n        os._exit(0)\n",
    "orphaned setsid grandchild": (
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        os.setsid()\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(60)\n"
        "        os._exit(0)\n"
        "    os.waitpid(pid, 0)\n"
    ),
    "child of a finished thread": (
        "    def spawn():\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(60)\n"
        "            os._exit(0)\n"
        "    t = threading.Thread(target=spawn)\n"
        "    t.start()\n"
        "    t.join()\n"
    ),
}


@pytest.fixture
async def env(tmp_path: Path):  # type: ignore[no-untyped-def]
    async with make_env(tmp_path, warm=1, max_workers=2) as e:
        yield e


@pytest.mark.parametrize("how", list(LEFTOVERS))
async def test_a_quick_task_that_leaves_a_process_is_cleaned_up(env: Env, how: str) -> None:
    program = WHO + LIST_PROCS + "import threading, time\ndef leave():\n" + LEFTOVERS[how]
    program += "    return 1\n"
    token = await env.ok(program, "who")
    assert await env.ok(program) == [1, 2]
    for _ in range(3):  # quick tasks: well inside the wrap-around bound
        assert await env.ok(program, "leave") == 1
        assert await env.ok(program) == [1, 2]
    assert await env.ok(program, "who") == token  # killed, not recycled


async def test_a_thread_that_ended_is_no_reason_to_recycle(env: Env) -> None:
    program = WHO + (
        "import threading\n"
        "def main():\n"
        "    t = threading.Thread(target=lambda: None)\n"
        "    t.start()\n"
        "    t.join()\n"
        "    return TOKEN\n"
    )
    token = await env.ok(program)
    assert await env.ok(program) == token
    assert env.pool.stats()["recycled"] == 0


async def test_a_replaced_ns_last_pid_descriptor_is_not_trusted(env: Env) -> None:
    # A descriptor that always reads the same would make every task look quiet.
    program = (
        WHO
        + LIST_PROCS
        + FIND_FD
        + (
            "import time\n"
            "def swap():\n"
            "    fd = _fd('/proc/sys/kernel/ns_last_pid')\n"
            "    with open('fake', 'w') as f:\n"
            "        f.write('7\\n')\n"
            "    fake = os.open('fake', os.O_RDONLY)\n"
            "    os.dup2(fake, fd)\n"
            "    os.close(fake)\n"
            "    return os.pread(fd, 16, 0).decode()\n"
            "def close():\n"
            "    os.close(_fd('/proc/sys/kernel/ns_last_pid'))\n"
            "def leave():\n"
            "    if os.fork() == 0:\n"
            "        time.sleep(60)\n"
            "        os._exit(0)\n"
        )
    )
    token = await env.ok(program, "who")
    assert await env.ok(program, "swap") == "7\n"
    await env.ok(program, "leave")
    assert await env.ok(program) == [1, 2]
    await env.ok(program, "close")
    await env.ok(program, "leave")
    assert await env.ok(program) == [1, 2]
    assert await env.ok(program, "who") == token


async def test_a_closed_statm_descriptor_keeps_the_memory_limit(env: Env) -> None:
    program = FIND_FD + (
        "def close():\n"
        "    os.close(_fd(f'/proc/{os.getpid()}/statm'))\n"
        "def hog():\n"
        "    return len(bytearray(4 << 30))\n"
    )
    await env.ok(program, "close")
    outcome = await env.run(program, "hog", memory_bytes=256 << 20)
    assert (outcome.status, outcome.error) == ("error", "MemoryError")


async def test_cpu_of_reaped_children_counts_and_of_killed_leftovers_does_not(
    env: Env,
) -> None:
    program = (
        "import os, threading, time\n"
        "def burn(seconds):\n"
        "    end = time.process_time() + seconds\n"
        "    while time.process_time() < end:\n"
        "        pass\n"
        "def waited():\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        burn(0.3)\n"
        "        os._exit(0)\n"
        "    os.waitpid(pid, 0)\n"
        "def left():\n"
        "    if os.fork() == 0:\n"
        "        burn(60)\n"
        "    time.sleep(0.5)\n"
        "def thread():\n"
        "    t = threading.Thread(target=lambda: None)\n"
        "    t.start()\n"
        "    t.join()\n"
    )
    outcome = await env.run(program, "waited")
    assert outcome.status == "ok" and outcome.cpu_time >= 0.25, outcome
    outcome = await env.run(program, "left")  # its child is killed and reaped afterwards
    assert outcome.status == "ok" and outcome.cpu_time < 0.2, outcome
    for fn in ["thread", "main"]:  # the next ones (slow path, then quiet) are not charged
        outcome = await env.run(program + "def main():\n    return 1\n", fn)
        assert outcome.status == "ok" and outcome.cpu_time < 0.2, outcome


ENTRIES = {
    "file": "open('x', 'w').close()",
    "directory": "os.mkdir('d')",
    "symlink": "os.symlink('/etc', 'l')",
    "fifo": "os.mkfifo('p')",
    "renamed in": "open('/tmp/moved', 'w').close()\n    os.rename('/tmp/moved', 'm')",
    "hard link": "open('/tmp/linked', 'w').close()\n    os.link('/tmp/linked', 'h')",
}


@pytest.mark.parametrize("entry", list(ENTRIES))
async def test_an_entry_left_with_the_times_put_back_still_costs_the_workdir(
    env: Env, entry: str
) -> None:
    look = "import os\ndef main():\n    return [os.getcwd(), sorted(os.listdir('.'))]\n"
    leave = (
        "import os\n"
        "def main():\n"
        "    st = os.stat('.')\n"
        f"    {ENTRIES[entry]}\n"
        "    os.utime('.', ns=(st.st_atime_ns, st.st_mtime_ns))\n"
        "    return os.getcwd()\n"
    )
    cwd1, seen1 = await env.ok(look)
    assert seen1 == [] and await env.ok(look) == [cwd1, []]  # now judged by one lstat
    assert await env.ok(leave) == cwd1
    cwd2, seen2 = await env.ok(look)
    assert cwd2 != cwd1 and seen2 == []


async def test_a_mode_put_back_keeps_the_workdir_a_mode_left_does_not(env: Env) -> None:
    look = "import os\ndef main():\n    return [os.getcwd(), sorted(os.listdir('.'))]\n"
    chmod = "import os\ndef main(modes):\n    for m in modes:\n        os.chmod('.', m)\n"
    cwd1, _ = await env.ok(look)
    assert await env.ok(look) == [cwd1, []]
    await env.ok(chmod, args=[[0o755, 0o700]])  # put back: still pristine
    assert await env.ok(look) == [cwd1, []]
    await env.ok(chmod, args=[[0o1700]])  # left changed: a new directory
    cwd2, seen2 = await env.ok(look)
    assert cwd2 != cwd1 and seen2 == []
