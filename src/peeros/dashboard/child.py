"""``peeros peer --web-ui``: the dashboard as a child process of the peer.

The child shares the peer's terminal (its login URL is printed there) and process
group (Ctrl-C and a group kill reach both), watches the peer's pid so it never outlives
it, and is stopped (SIGTERM, then SIGKILL) when the peer returns.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path


def spawn_dashboard(data_dir: Path, host: str, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "peeros",
            "dashboard",
            "--data-dir",
            str(data_dir),
            "--host",
            host,
            "--port",
            str(port),
            "--parent-pid",
            str(os.getpid()),
        ],
        stdin=subprocess.DEVNULL,
    )


def stop_dashboard(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
