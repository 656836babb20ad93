"""The tracker's re-replication loop: execute the pure planner's copy instructions.

Every ``interval`` seconds :meth:`OwnedRegistry.repairs` lists the copies that would
restore each owned file's replica count on live peers (holders declared dead by the
sweep, or dropped as bad, no longer count); for each, the tracker asks a surviving
holder to push its ciphertext to the new holder, and records the new holder once the
copy is acknowledged. The tracker never sees the bytes, and the copies are ciphertext.
"""

from __future__ import annotations

import asyncio
import logging

from peeros.errors import PeerOSError
from peeros.net.client import ClusterClient
from peeros.protocol import OwnedStored
from peeros.tracker.owned import OwnedRegistry

log = logging.getLogger(__name__)

__all__ = ["repair_loop", "repair_once"]

#: A copy may move a large file; it gets longer than an ordinary request.
COPY_TIMEOUT = 600.0


async def repair_once(owned: OwnedRegistry, client: ClusterClient) -> int:
    """Carry out the current repair plan; return the number of copies made."""
    made = 0
    for instr in owned.repairs():
        job = owned.replicate_request(instr)
        if job is None:
            continue
        address, body = job
        try:
            await client.request(
                address, "POST", "/v1/owned/replicate", body, OwnedStored, timeout=COPY_TIMEOUT
            )
        except PeerOSError as exc:
            log.warning("copy of %r from %s failed: %s", instr.name, instr.source, exc)
            continue
        owned.copied(instr)
        made += 1
    return made


async def repair_loop(
    owned: OwnedRegistry, client: ClusterClient, interval: float, grace: float = 0.0
) -> None:
    """Repair every ``interval`` seconds, starting after ``grace`` seconds: a restarted
    tracker first lets live peers heartbeat, so that none is mistaken for dead."""
    await asyncio.sleep(grace)
    while True:
        try:
            await repair_once(owned, client)
        except Exception:  # a bug here must not stop the tracker
            log.exception("re-replication round failed")
        await asyncio.sleep(interval)
