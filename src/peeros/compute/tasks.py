"""Task routing: where a task runs, retries, results, cancellation.

*Origin* side (the peer the user submitted to): validate everything first (nothing is
queued if any task of a batch is invalid), answer from the result cache when allowed,
then confidential tasks go to the local scheduler and never touch the network, while the
others are placed by the tracker (a whole batch in one request) and sent to each chosen
peer in chunks (:mod:`peeros.compute.chunks`). A failed attempt (error, timeout, or the
executing peer dying) is retried elsewhere while retries remain; the caller gets exactly
one result per task.

The executor side (running tasks for a member) is :mod:`peeros.compute.execution`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence

from peeros.compute import chunks
from peeros.compute.cache import ResultCache
from peeros.compute.execution import Executor, check_request
from peeros.compute.history import TaskHistory
from peeros.compute.program import code_hash, program_hash
from peeros.compute.task_results import TaskResults
from peeros.compute.tracked import Tracked
from peeros.eager import raising
from peeros.errors import BadRequest, PeerOSError, Unavailable, Unreachable
from peeros.protocol import (
    Body,
    CancelResponse,
    Encoded,
    ExecuteResponse,
    Placement,
    TaskRequest,
    TaskResult,
)

log = logging.getLogger(__name__)

#: Extra seconds an origin waits for a remote chunk beyond the tasks' own timeouts.
REMOTE_GRACE = 300.0

Place = Callable[[int, list[str]], Awaitable[list[Placement]]]
PlaceNow = Callable[[int, list[str]], list[Placement] | None]
#: Give back a lease ``PlaceNow`` handed out, once its task has ended (True: first in
#: line for the next task, the peer ran it to the end; False: last in line).
GiveBack = Callable[[Placement, bool], None]


class TaskService(TaskResults):
    """An origin's task routing (see the module docstring); results: :class:`TaskResults`."""

    def __init__(
        self,
        peer_id: str,
        executor: Executor,
        history: TaskHistory,
        cache: ResultCache,
        place: Place | None,
        remote_execute: Callable[[str, Body, float], Awaitable[ExecuteResponse]],
        remote_cancel: Callable[[str, str], Awaitable[None]],
        place_now: PlaceNow | None = None,
        give_back: GiveBack | None = None,
    ) -> None:
        super().__init__(peer_id, history)
        self.executor = executor
        self.scheduler = executor.scheduler
        self.quota = executor.quota
        self.cache = cache
        self.place = place
        self.remote_execute = remote_execute
        self.remote_cancel = remote_cancel
        #: Placements at hand (leases), without a round trip: tasks start at once.
        self.place_now = place_now
        self.give_back = give_back
        self._addresses: dict[str, str] = {}
        self._tg: asyncio.TaskGroup | None = None

    async def run(self) -> None:
        """Own the tasks that drive submissions (cancelled when the peer stops)."""
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            await asyncio.Event().wait()

    # --- origin side -------------------------------------------------------------------

    def submit(
        self,
        requests: list[TaskRequest],
        parent: str | None = None,
        group: str | None = None,
        on: str | None = None,
    ) -> list[str]:
        """Queue tasks; ``parent``/``group`` make them children of a task, and ``on`` (a
        cluster address, already resolved) runs them there instead of asking the tracker."""
        for i, req in enumerate(requests):
            where = f"task {i}: " if len(requests) > 1 else ""
            check_request(req, where)
            if req.elsewhere and req.confidential:
                raise BadRequest(
                    f"{where}a task cannot be both confidential (this peer only) and "
                    "elsewhere (another peer)"
                )
            if req.elsewhere and self.place is None:
                raise Unavailable(f"{where}this peer has no tracker to place a task elsewhere")
        if self._tg is None:
            raise Unavailable("this peer is not accepting tasks yet")
        self.quota.check_and_consume(self.peer_id, len(requests))
        now = time.time()
        ids: list[str] = []
        local: list[Tracked] = []
        placed: list[Tracked] = []
        for req in requests:
            t = Tracked(os.urandom(16).hex(), req, now, parent=parent, group=group)
            # A callable's payload holds its args too: key it by its name, not per task.
            t.program_sha = code_hash(req.program or "<callable>", req.function or "")
            self._remember(t)
            ids.append(t.task_id)
            if req.cache and req.program is not None and req.function is not None:
                t.cache_key = program_hash(req.program, req.function, req.args)
                hit = self.cache.get(t.cache_key)
                if hit is not None:
                    self._complete(t, t.from_cache(hit.value, self.peer_id))
                    continue
            self._record(t, "QUEUED")
            (local if req.confidential or self.place is None else placed).append(t)
        if on is not None and placed:
            key = f"at:{on}"
            self._addresses[key] = on
            self._tg.create_task(self._run_remote(key, placed))
            placed = []
        if local:
            self._tg.create_task(self._run_here(local))
        self._place_group([t for t in placed if t.request.elsewhere])
        self._place_group([t for t in placed if not t.request.elsewhere])
        return ids

    def _place_group(self, tasks: list[Tracked]) -> None:
        """Run tasks where leases say, at once, or else where the tracker will say."""
        if not tasks:
            return
        assert self._tg is not None
        at_hand = None
        if self.place_now is not None:
            at_hand = self.place_now(len(tasks), self._exclude(tasks))
        if at_hand is None:
            self._tg.create_task(self._place_and_run(tasks))
            return
        # A few tasks on leases: no placement task in between.
        leases: dict[str, list[Placement]] = {}
        for lease in at_hand:
            leases.setdefault(lease.peer_id, []).append(lease)
        for peer_id, chunk in self._group(tasks, at_hand).items():
            if peer_id == self.peer_id:
                self._tg.create_task(self._run_here(chunk, leases[peer_id]))
            else:  # sent here and now; a task awaits the reply
                try:
                    reply = self._send_remote(peer_id, chunk)
                except Exception as exc:  # (never out of submit(): the chunk fails, retried)
                    log.exception("could not send %d task(s) to %s", len(chunk), peer_id)
                    reply = raising(PeerOSError(f"could not send the task: {exc!r}"))
                self._tg.create_task(self._remote_reply(peer_id, chunk, leases[peer_id], reply))

    def _exclude(self, tasks: list[Tracked]) -> list[str]:
        """Peers not to place ``tasks`` on: those they failed on, and this peer for tasks
        asked to run elsewhere (a group is all elsewhere or none)."""
        banned = {p for t in tasks for p in t.failed_on}
        if tasks and tasks[0].request.elsewhere:
            banned.add(self.peer_id)
        return sorted(banned)

    async def _place_and_run(self, tasks: list[Tracked]) -> None:
        assert self.place is not None
        away = [t for t in tasks if t.request.elsewhere]
        if away and len(away) < len(tasks):  # (retries of a mixed batch)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._place_and_run(away))
                tg.create_task(self._place_and_run([t for t in tasks if not t.request.elsewhere]))
            return
        try:
            placements = await self.place(len(tasks), self._exclude(tasks))
        except Unavailable as exc:
            if away:  # never here: the caller asked for another peer
                found = await self._place_away(tasks, exc)
                if found is None:
                    return
                placements = found
            else:
                log.warning("placement failed (%s); running %d task(s) here", exc, len(tasks))
                await self._run_here(tasks)
                return
        async with asyncio.TaskGroup() as tg:
            for peer_id, chunk in chunks.plan(self._group(tasks, placements)):
                if peer_id == self.peer_id:
                    tg.create_task(self._run_here(chunk))
                else:
                    tg.create_task(self._run_remote(peer_id, chunk))
                # One turn of the event loop per chunk: the requests already under way get
                # written (aiohttp sends a body from a task of its own) before the next
                # chunk is built; else no peer gets its first chunk before all are built.
                await asyncio.sleep(0)

    async def _place_away(self, tasks: list[Tracked], exc: Unavailable) -> list[Placement] | None:
        """Placements for ``elsewhere`` tasks that no peer they have not failed on can
        take: any peer but this one (a failure is a preference, as for other tasks,
        which would run here), else None and they end, saying why."""
        if any(t.failed_on for t in tasks) and self.place is not None:
            try:
                return await self.place(len(tasks), [self.peer_id])
            except Unavailable as again:
                exc = again
        for t in tasks:
            self._complete(t, t.ended(self.peer_id, f"no other peer can run it: {exc.message}"))
        return None

    def _group(self, tasks: list[Tracked], placements: list[Placement]) -> dict[str, list[Tracked]]:
        """The tasks by the peer placed to run them (whose address is remembered)."""
        groups: dict[str, list[Tracked]] = {}
        for t, p in zip(tasks, placements, strict=True):
            self._addresses[p.peer_id] = p.address
            groups.setdefault(p.peer_id, []).append(t)
        return groups

    def _give_back(self, leases: Sequence[Placement], results: Sequence[TaskResult]) -> None:
        """The tasks that ran on ``leases`` have ended: the next ones may reuse them, first
        if one of them ran to the end there (a peer that fails every task is not
        preferred), else after the others."""
        if self.give_back is not None and leases:
            warm = any(r.status == "DONE" for r in results)
            for lease in leases:
                self.give_back(lease, warm)

    async def _run_here(self, tasks: list[Tracked], leases: Sequence[Placement] = ()) -> None:
        tasks = [t for t in tasks if not t.finished]
        if not tasks:  # all cancelled while being placed
            self._give_back(leases, [])
            return
        for t in tasks:
            t.attempts += 1
            t.executor = self.peer_id
            t.address = None
            self._record(t, "RUNNING")
        results = await self.executor.run_many(self.peer_id, [t.item() for t in tasks])
        await self._settle(tasks, results, leases)

    async def _run_remote(
        self, peer_id: str, tasks: list[Tracked], leases: Sequence[Placement] = ()
    ) -> None:
        tasks = [t for t in tasks if not t.finished]
        if not tasks:  # all cancelled while being placed
            self._give_back(leases, [])
            return
        await self._remote_reply(peer_id, tasks, leases, self._send_remote(peer_id, tasks))

    def _send_remote(self, peer_id: str, tasks: list[Tracked]) -> Awaitable[ExecuteResponse]:
        """A new attempt of ``tasks`` on ``peer_id``: sent (at once if its link is open)."""
        for t in tasks:
            t.attempts += 1
            t.executor = peer_id
            t.address = self._addresses[peer_id]
        request = Encoded('{"tasks": [' + ", ".join(t.item_json() for t in tasks) + "]}")
        budget = max(t.request.timeout for t in tasks) * len(tasks) + REMOTE_GRACE
        reply = self.remote_execute(self._addresses[peer_id], request, budget)
        for t in tasks:  # (after the send: a history flush may be due here)
            self._record(t, "RUNNING")
        return reply

    async def _remote_reply(
        self,
        peer_id: str,
        tasks: list[Tracked],
        leases: Sequence[Placement],
        reply: Awaitable[ExecuteResponse],
    ) -> None:
        ran_on: Sequence[Placement] | None = leases  # given back once the results are out
        try:
            response = await reply
            results = response.results
        except PeerOSError as exc:
            ran_on = None
            log.warning("executing peer %s failed for %d task(s): %s", peer_id, len(tasks), exc)
            if not isinstance(exc, Unavailable):  # (else the peer's leases are dropped)
                self._give_back(leases, [])
            results = [
                TaskResult(
                    task_id=t.task_id,
                    status="FAILED",
                    peer_id=peer_id,
                    error=f"executing peer {peer_id} failed: {exc.message}",
                )
                for t in tasks
            ]
            for t in tasks:
                t.failed_on.append(peer_id)
                if isinstance(exc, Unreachable) and not peer_id.startswith("at:"):
                    t.attempts -= 1  # never delivered: placed again, not counted as a try
        await self._settle(tasks, results, ran_on)

    async def _settle(
        self,
        tasks: list[Tracked],
        results: list[TaskResult],
        leases: Sequence[Placement] | None = None,
    ) -> None:
        """Complete the tasks that ended (their callers hear of it at once), then give
        back the ``leases`` they ran on, then run again those that may be retried."""
        retry: list[Tracked] = []
        try:
            for t, r in zip(tasks, results, strict=True):
                if t.finished:  # cancelled meanwhile: the first final result stands
                    continue
                if r.status in ("FAILED", "TIMED_OUT") and t.attempts <= t.request.max_retries:
                    if r.peer_id and r.peer_id != self.peer_id and r.peer_id not in t.failed_on:
                        t.failed_on.append(r.peer_id)  # prefer another peer next time
                    retry.append(t)
                    continue
                self._complete(t, t.final(r, self.peer_id))
        finally:
            if leases is not None:
                self._give_back(leases, results)
        if retry:
            local = [t for t in retry if t.request.confidential or self.place is None]
            placed = [t for t in retry if t not in local]
            async with asyncio.TaskGroup() as tg:
                if local:
                    tg.create_task(self._run_here(local))
                if placed:
                    tg.create_task(self._place_and_run(placed))

    def _complete(self, t: Tracked, result: TaskResult) -> None:
        t.result = result
        t.finished = True
        t.finished_at = time.time()
        for watcher in t.watchers:
            try:
                watcher.one_done()
            except Exception:  # (a waiter's answer failed: the task's end is still recorded)
                log.exception("task %s: telling a waiter of its end failed", t.task_id)
        t.watchers.clear()
        self._record(t, result.status)
        if t.cache_key and result.status == "DONE" and not result.cached:
            self.cache.put(t.cache_key, result)

    def _record(self, t: Tracked, status: str) -> None:
        self.history.record_later(
            t.task_id, status, functools.partial(t.history_row, self.peer_id, status)
        )

    async def cancel(self, task_id: str) -> CancelResponse:
        """Cancel a queued or running task. The caller sees CANCELLED at once; the
        executing peer kills the task's sandbox (its CPU is free within a second)."""
        t = self.tracked.get(task_id)
        if t is None:
            self.get(task_id)  # NotFound, or a task that finished long ago
            raise BadRequest(f"task {task_id} has already finished")
        if t.finished:
            assert t.result is not None
            return CancelResponse(task_id=task_id, cancelled=False, status=t.result.status)
        executor = t.executor
        self._complete(t, t.ended(self.peer_id, "cancelled", "CANCELLED", executor))
        if executor is None or executor == self.peer_id:
            self.scheduler.cancel(task_id)
        else:
            try:
                await self.remote_cancel(self._addresses[executor], task_id)
            except PeerOSError as exc:
                log.warning("could not cancel %s on %s: %s", task_id, executor, exc)
        return CancelResponse(task_id=task_id, cancelled=True, status="CANCELLED")
