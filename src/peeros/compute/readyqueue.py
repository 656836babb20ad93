"""The ready queue: insertion-ordered for display, a heap for decisions.

Each decision is O(log n) instead of a rescan of the whole queue (a rescan made a batch
of n tasks cost O(n²)): jobs sit in a heap under the policy's ``static_key``, which orders
them as the policy would at any later time. Removal is lazy: a job's ``generation`` moves
on when it leaves or re-enters the queue, and stale heap entries are dropped when seen.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator
from typing import Any

from peeros.compute.jobs import Job

Entry = tuple[Any, int, int, Job]


class ReadyQueue:
    def __init__(self, key: Callable[[Job], Any]) -> None:
        self._key = key
        self._jobs: dict[str, Job] = {}
        self._heap: list[Entry] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._jobs)

    def __bool__(self) -> bool:
        return bool(self._jobs)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._jobs

    def values(self) -> Iterator[Job]:
        return iter(list(self._jobs.values()))

    def push(self, job: Job) -> None:
        job.generation += 1
        self._jobs[job.task_id] = job
        heapq.heappush(self._heap, (self._key(job), next(self._seq), job.generation, job))

    def remove(self, job: Job) -> None:
        if self._jobs.pop(job.task_id, None) is not None:
            job.generation += 1

    def rekey(self, key: Callable[[Job], Any]) -> None:
        """Order by another policy from now on."""
        self._key = key
        jobs = list(self._jobs.values())
        self._jobs.clear()
        self._heap.clear()
        for job in jobs:
            self.push(job)

    def peek(self) -> Job | None:
        while self._heap:
            _key, _seq, generation, job = self._heap[0]
            if generation == job.generation and job.task_id in self._jobs:
                return job
            heapq.heappop(self._heap)
        return None

    def first(self, acceptable: Callable[[Job], bool]) -> Job | None:
        """The best job that ``acceptable`` takes; those it refuses keep their place."""
        refused: list[Entry] = []
        chosen: Job | None = None
        while (job := self.peek()) is not None:
            entry = heapq.heappop(self._heap)
            if acceptable(job):
                chosen = job
                heapq.heappush(self._heap, entry)
                break
            refused.append(entry)
        for entry in refused:
            heapq.heappush(self._heap, entry)
        return chosen
