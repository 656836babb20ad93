"""Executor side of CPU sharing: running tasks that a cluster member (or this peer)
asked for, in sandboxed workers that serve only that member.

The member's peer id comes from its verified certificate; its quota is checked for the
whole request before anything is queued; each task is re-validated here, since an
executor does not trust an origin's checks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
from collections.abc import Callable

from peeros.compute.jobs import Job, JobResult
from peeros.compute.program import code_hash, validate_args, validate_program
from peeros.compute.quotas import TaskQuota
from peeros.compute.scheduler import Scheduler
from peeros.compute.workers import TaskSpec
from peeros.eager import EagerFuture
from peeros.errors import BadRequest, Forbidden, NotFound, PeerOSError
from peeros.protocol import ExecuteItem, TaskRequest, TaskResult


def decode_payload(payload: str | None, where: str) -> bytes | None:
    if payload is None:
        return None
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"{where}payload is not valid base64: {exc}") from exc


def check_request(req: TaskRequest | ExecuteItem, where: str = "") -> None:
    """Static checks: a program that parses and defines the function, or a payload."""
    if req.payload is not None:
        if req.program is not None:
            raise BadRequest(f"{where}give either program or payload, not both")
        decode_payload(req.payload, where)
        return
    if req.program is None or req.function is None:
        raise BadRequest(f"{where}a task needs program and function (or a payload)")
    try:
        _validate_program(req.program, req.function)
        validate_args(req.args)
    except PeerOSError as exc:
        raise type(exc)(where + exc.message) from exc


@functools.lru_cache(maxsize=256)
def _validate_program(program: str, function: str) -> None:
    """Batches repeat one program thousands of times: parse it once."""
    validate_program(program, function)


#: A queued item: its job's future, or its result already (it failed to queue).
Pending = EagerFuture[JobResult] | TaskResult


class Executor:
    """Runs tasks on this peer's scheduler on behalf of an owner (a peer id)."""

    def __init__(self, peer_id: str, scheduler: Scheduler, quota: TaskQuota) -> None:
        self.peer_id = peer_id
        self.scheduler = scheduler
        self.quota = quota
        #: Refuses a job that could never be admitted (set by the kernel service).
        self.validate: Callable[[Job], None] | None = None

    async def execute(self, origin: str, items: list[ExecuteItem]) -> list[TaskResult]:
        return await self.collect(self.start(origin, items))

    def start(self, origin: str, items: list[ExecuteItem]) -> list[Pending]:
        """Check and queue ``origin``'s items now (all or none); :meth:`collect` waits."""
        for i, item in enumerate(items):
            check_request(item, f"task {i}: " if len(items) > 1 else "")
        self.quota.check_and_consume(origin, len(items))
        return [self.submit_local(origin, item) for item in items]

    async def run_many(self, owner: str, items: list[ExecuteItem]) -> list[TaskResult]:
        """Queue every item at once, then wait for them all."""
        return await self.collect([self.submit_local(owner, item) for item in items])

    async def collect(self, pending: list[Pending]) -> list[TaskResult]:
        """The results of queued items (futures, not one asyncio task per item: a batch
        is thousands of items)."""
        if len(pending) == 1:  # one future, awaited directly: no gather (one loop turn less)
            one = pending[0]
            return [self._to_result(await one) if isinstance(one, asyncio.Future) else one]
        futures = [p for p in pending if isinstance(p, asyncio.Future)]
        if futures:
            await asyncio.gather(*futures)
        return self.results(pending)

    def results(self, pending: list[Pending]) -> list[TaskResult]:
        """The results of queued items that have all ended (raises what a job raised)."""
        return [
            self._to_result(p.result()) if isinstance(p, asyncio.Future) else p for p in pending
        ]

    @staticmethod
    def when_done(pending: list[Pending], then: Callable[[], None]) -> None:
        """Call ``then()`` the moment every queued item has ended (now if all have): in
        the callback where the last one ends, before the scheduler's work that follows."""
        running = [p for p in pending if isinstance(p, asyncio.Future) and not p.done()]
        left = len(running)
        if not left:
            then()
            return

        def one_ended(_: EagerFuture[JobResult]) -> None:
            nonlocal left
            left -= 1
            if left == 0:
                then()

        for future in running:
            future.listen(one_ended)

    def cancel_for(self, origin: str, task_id: str) -> None:
        job = self.scheduler.jobs.get(task_id)
        if job is None:
            raise NotFound(f"task {task_id} is not running here")
        if job.spec.owner != origin:
            raise Forbidden("only the peer that submitted a task may cancel it")
        self.scheduler.cancel(task_id)

    def submit_local(self, owner: str, item: ExecuteItem) -> Pending:
        """Queue one item on this peer's scheduler: the job's future, or the failure."""
        spec = TaskSpec(
            task_id=item.task_id,
            owner=owner,
            program=item.program,
            function=item.function,
            args=list(item.args),
            payload=decode_payload(item.payload, ""),
            memory_bytes=item.memory_mb << 20 if item.memory_mb else None,
            cpu_seconds=item.timeout * 2 + 5,
        )
        job = Job(
            task_id=item.task_id,
            spec=spec,
            priority=item.priority,
            timeout=item.timeout,
            expected=item.expected_time,
            burst_key=code_hash(item.program or "", item.function or ""),
            name=item.function or "task",
            parent=item.parent,
            group=item.group,
            claims=dict(item.claims),
            holds=dict(item.holds),
            memory_mb=item.memory_mb,
        )
        try:
            if self.validate is not None:
                self.validate(job)
            return self.scheduler.submit(job)
        except PeerOSError as exc:
            return TaskResult(
                task_id=item.task_id, status="FAILED", error=exc.message, peer_id=self.peer_id
            )

    def _to_result(self, jr: JobResult) -> TaskResult:
        o = jr.outcome
        payload = base64.b64encode(o.result_payload).decode() if o and o.result_payload else None
        error = (o.error if o and o.error else None) or jr.error
        # Every field is ours and of the right type; pydantic-core validates a dict about
        # three times faster than model_construct builds the model field by field.
        return TaskResult.model_validate(
            {
                "task_id": jr.task_id,
                "status": jr.status,
                "result": o.result if o and jr.status == "DONE" else None,
                "result_payload": payload if jr.status == "DONE" else None,
                "error": None if jr.status == "DONE" else error,
                "traceback": o.traceback if o else None,
                "execution_time": jr.execution_time,
                "waiting_time": jr.waiting_time,
                "turnaround_time": jr.turnaround_time,
                "peer_id": self.peer_id,
            }
        )
