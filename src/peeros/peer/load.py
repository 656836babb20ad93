"""Sampling a peer's load for heartbeats: real CPU, memory and disk figures (psutil)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psutil

from peeros.protocol import Load


class LoadSampler:
    def __init__(
        self,
        data_dir: Path,
        slots: int,
        task_counts: Callable[[], tuple[int, int]] = lambda: (0, 0),
    ) -> None:
        self.data_dir = data_dir
        self.slots = slots
        #: Returns (queued, running) from the scheduler.
        self.task_counts = task_counts
        psutil.cpu_percent(None)  # the first call primes the counter and returns 0.0

    def sample(self) -> Load:
        queued, running = self.task_counts()
        return Load(
            queued=queued,
            running=running,
            slots=self.slots,
            cpu_percent=psutil.cpu_percent(None),
            mem_free=psutil.virtual_memory().available,
            disk_free=psutil.disk_usage(str(self.data_dir)).free,
        )
