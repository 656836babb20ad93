"""The peer process: identity, enrollment, both planes, and its background tasks.

Files in a peer's data directory:

==============  =====  =====================================================
``node.key``    0600   the Ed25519 identity key (the peer id derives from it)
``node.crt``           the cluster certificate issued at enrollment
``ca.crt``             the cluster CA, pinned by the join token
``api.token``   0600   the bearer token of the local (user-plane) API
``api.json``           where the running peer listens (written after binding)
==============  =====  =====================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import time
from typing import Any

from aiohttp import web

from peeros import __version__
from peeros.compute.cache import ResultCache
from peeros.compute.execution import Executor
from peeros.compute.history import TaskHistory
from peeros.compute.leases import LeasedPlacer
from peeros.compute.quotas import TaskQuota
from peeros.compute.scheduler import Scheduler
from peeros.compute.tasks import TaskService
from peeros.compute.workers import SandboxConfig, WorkerPool
from peeros.config import PeerSettings
from peeros.db import PeerDB
from peeros.errors import BadRequest, NotFound, Unavailable
from peeros.files.local import LocalFiles
from peeros.files.owned_store import OwnedStore
from peeros.fsutil import write_json
from peeros.memory.commands import CommandProcessor
from peeros.memory.kv import KVStore
from peeros.memory.resp_server import serve_resp
from peeros.memory.service import MemoryService
from peeros.net.client import ClusterClient
from peeros.net.link import LinkClient
from peeros.net.link_server import LinkServer
from peeros.net.server import start_site
from peeros.peer import local_api
from peeros.peer.apps import MAX_TASK_BODY, build_apps, load_or_create_api_token
from peeros.peer.cluster_kernel import ClusterKernel
from peeros.peer.enroll import enroll
from peeros.peer.ipc_service import IpcService
from peeros.peer.kernel_service import KernelService
from peeros.peer.load import LoadSampler
from peeros.peer.membership import Membership
from peeros.peer.owned import OwnedService
from peeros.peer.syscalls import Syscalls
from peeros.peer.task_calls import TaskCalls
from peeros.protocol import (
    ADDRESS_RE,
    PEER_ID_RE,
    Heartbeat,
    HistoryResponse,
    PeerList,
    PeerStatus,
    PidRequest,
    SchedState,
)
from peeros.security import identity, pki
from peeros.share.peer import SharePeer

log = logging.getLogger(__name__)

API_INFO = "api.json"
DB_FILE = "peer.db"


class PeerNode:
    """A running peer. Routes of both planes call its methods."""

    def __init__(self, settings: PeerSettings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir
        self.started = time.time()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        self.ident = identity.load_or_create(self.data_dir)
        self.address = ""
        self.api_url = ""
        self.membership: Membership | None = None
        self.client: ClusterClient | None = None
        self.links: LinkClient | None = None
        self.calls = TaskCalls(self)
        self.link_server = LinkServer({"execute": self.calls.execute_op})
        self.lane_server = local_api.lane_server(self)
        max_workers = settings.max_workers or 4 * settings.slots + 4
        self.pool = WorkerPool(
            SandboxConfig(
                hidden_paths=(self.data_dir.resolve(),),
                default_memory_bytes=settings.task_memory_mb << 20,
            ),
            warm=settings.slots,
            max_workers=max_workers,
        )
        self.scheduler = Scheduler(
            self.pool,
            settings.slots,
            policy=settings.policy,
            quantum=settings.quantum_ms / 1000,
            aging=settings.aging,
            max_started=max_workers,
            pipeline=settings.pipeline,
        )
        self.db = PeerDB(self.data_dir / DB_FILE)
        self.history = TaskHistory(self.db)
        self.executor = Executor(
            self.peer_id,
            self.scheduler,
            TaskQuota(settings.task_quota, settings.task_quota_window),
        )
        self.placer: LeasedPlacer | None = None
        if settings.tracker and settings.placement_leases:
            self.placer = LeasedPlacer(
                self.calls.place, settings.placement_leases, settings.heartbeat_interval
            )
        self.tasks = TaskService(
            self.peer_id,
            self.executor,
            self.history,
            ResultCache(settings.cache_entries, settings.cache_ttl),
            self.placer.place if self.placer else self.calls.place if settings.tracker else None,
            self.calls.remote_execute,
            self.calls.remote_cancel,
            self.placer.take_now if self.placer else None,
            self.placer.give_back if self.placer else None,
        )
        self.load = LoadSampler(self.data_dir, settings.slots, self.scheduler.counts)
        self.store = KVStore(
            max_keys=settings.mem_max_keys,
            max_bytes=settings.mem_max_bytes,
            max_value_bytes=settings.mem_max_value_bytes,
        )
        self.memory = MemoryService(self.store, self.peer_id)
        self.ipc = IpcService(self.peer_id)
        self.resp_address: str | None = None
        self.kernel = KernelService(
            self.peer_id,
            self.scheduler,
            settings.memory_pool_mb,
            settings.alloc_policy,
            dict(settings.resources),
        )
        self.syscalls = Syscalls(self)
        self.pool.syscall_handler = self.syscalls
        self.kernel.on_task_end.append(self.syscalls.task_ended)
        self.executor.validate = self.kernel.validate
        self.cluster_kernel = ClusterKernel(self)
        self.files = LocalFiles(self.data_dir / "files", settings.max_file_bytes, self.peer_id)
        self.owned_store = OwnedStore(
            self.data_dir / "owned", settings.owned_quota_bytes, self.peer_id
        )
        self.owned = OwnedService(self)
        self.share = SharePeer(self)

    @property
    def peer_id(self) -> str:
        return self.ident.peer_id

    async def _ensure_enrolled(self) -> None:
        if (self.data_dir / pki.NODE_CERT_FILE).exists():
            return
        if not self.settings.tracker or not self.settings.join_token:
            raise BadRequest(
                f"{self.data_dir} holds no cluster certificate yet: the first start needs "
                "--tracker HOST:PORT and --join TOKEN"
            )
        await enroll(
            self.data_dir,
            self.settings.tracker,
            self.settings.join_token,
            self.ident,
            self.settings.request_timeout,
        )

    def heartbeat(self) -> Heartbeat:
        return Heartbeat(
            address=self.address, api_url=self.api_url, load=self.load.sample(), version=__version__
        )

    def status(self) -> PeerStatus:
        m = self.membership
        return PeerStatus(
            version=__version__,
            peer_id=self.peer_id,
            address=self.address,
            api_url=self.api_url,
            data_dir=str(self.data_dir),
            tracker=self.settings.tracker,
            tracker_reachable=bool(m and m.reachable),
            last_heartbeat_ok=m.last_ok if m else None,
            load=self.load.sample(),
            uptime=time.time() - self.started,
            known_peers=len(m._cached.peers) if m and m._cached else 0,
            sandboxed=self.pool.sandboxed,
            policy=self.scheduler.policy_name,
            resp_address=self.resp_address,
            memory_keys=self.store.dbsize(),
            links_open=self.links.open_links() if self.links else 0,
            link_calls_served=self.link_server.calls_served,
            lane_calls_served=self.lane_server.calls_served,
        )

    async def resolve(self, target: str | None) -> str | None:
        """The cluster address of ``target`` (a peer id or HOST:PORT); None means here."""
        if not target or target in (self.peer_id, self.address):
            return None
        if PEER_ID_RE.match(target):
            if self.membership is None:
                raise Unavailable("this peer runs without a tracker; it has no member list")
            p = await self.membership.find(target)
            if p is None:
                raise NotFound(f"no peer {target} in this cluster")
            if not p.alive:
                raise Unavailable(f"peer {target} is not alive")
            return None if p.address == self.address else p.address
        if ADDRESS_RE.match(target):
            return target
        raise BadRequest(f"on must be a peer id or HOST:PORT, got {target[:60]!r}")

    async def memory_call(self, op: str, req: Any) -> Any:
        """A memory operation from the user plane: here, or forwarded to ``req.on``."""
        target = await self.resolve(req.on)
        plain = req.model_copy(update={"on": None})
        if target is None:
            return self.memory.run(op, "local", plain)
        assert self.client is not None
        return await self.client.request(target, "POST", f"/v1/memory/{op}", plain)

    async def ipc_call(self, op: str, req: Any) -> Any:
        """An IPC operation from the user plane: here, or forwarded to ``req.on``."""
        target = await self.resolve(req.on)
        plain = self.ipc.prepare(req)
        if target is None:
            return await self.ipc.run(op, plain)
        assert self.client is not None
        timeout = self.ipc.transport_timeout(plain)
        return await self.client.request(target, "POST", f"/v1/ipc/{op}", plain, timeout=timeout)

    async def collect(self, pid: str, address: str | None) -> None:
        """Reap a finished child's zombie where it ran."""
        if address is None or address == self.address:
            self.kernel.collect(pid)
            return
        assert self.client is not None
        await self.client.request(address, "POST", "/v1/proc/collect", PidRequest(pid=pid))

    async def send_to(self, peer_id: str, path: str, body: Any) -> Any:
        if peer_id == self.peer_id:
            raise BadRequest("send_to is for other peers")
        address = await self.resolve(peer_id)
        assert self.client is not None and address is not None
        return await self.client.request(address, "POST", path, body)

    def sched_state(self) -> SchedState:
        return SchedState(
            **self.scheduler.snapshot(),
            sandboxed=self.pool.sandboxed,
            workers=self.pool.stats(),
            cache=self.tasks.cache.stats(),
        )

    def history_report(self, limit: int) -> HistoryResponse:
        return HistoryResponse(tasks=self.history.recent(limit), stats=self.history.stats())

    async def _flush_history(self) -> None:
        while True:
            await asyncio.sleep(self.history.flush_every)
            try:
                self.history.flush_settled()
            except Exception as exc:  # (e.g. a full disk) the rows stay buffered: retried
                log.error("could not write the task history: %r", exc)

    async def peers(self) -> PeerList:
        if self.membership is None:
            raise Unavailable("this peer runs without a tracker; it has no member list")
        return await self.membership.peers()

    async def run(self, stop: asyncio.Event) -> None:
        await self._ensure_enrolled()
        creds = pki.Credentials.from_dir(self.data_dir)
        ca_cert = pki.load_cert_pem(creds.ca_pem)
        client = ClusterClient(pki.client_context(creds), self.settings.request_timeout)
        self.client = client
        self.links = LinkClient(client, MAX_TASK_BODY)
        api_token = load_or_create_api_token(self.data_dir)

        cluster_app, api_app = build_apps(self, ca_cert.subject, api_token)

        runners: list[web.AppRunner] = []
        await self.pool.start()
        try:
            runner, port = await start_site(
                cluster_app, self.settings.host, self.settings.port, pki.server_context(creds)
            )
            runners.append(runner)
            self.address = self.settings.advertise or f"{self.settings.host}:{port}"
            runner, api_port = await start_site(
                api_app, self.settings.api_host, self.settings.api_port
            )
            runners.append(runner)
            self.api_url = f"http://{self.settings.api_host}:{api_port}"
            resp_server = None
            if self.settings.resp_port is not None:
                expected = api_token.encode()
                processor = CommandProcessor(
                    self.store, lambda offered: hmac.compare_digest(offered, expected)
                )
                resp_server, resp_port = await serve_resp(
                    lambda: processor, self.settings.api_host, self.settings.resp_port
                )
                self.resp_address = f"{self.settings.api_host}:{resp_port}"
            if self.settings.tracker:
                self.membership = Membership(
                    client, self.settings.tracker, self.heartbeat, self.settings.heartbeat_interval
                )
            write_json(
                self.data_dir / API_INFO,
                {
                    "peer_id": self.peer_id,
                    "address": self.address,
                    "api_url": self.api_url,
                    "pid": os.getpid(),
                    "data_dir": str(self.data_dir),
                    "tracker": self.settings.tracker,
                    "resp_address": self.resp_address,
                },
            )
            log.info("peer %s: cluster %s, local API %s", self.peer_id, self.address, self.api_url)
            async with asyncio.TaskGroup() as tg:
                background = [
                    tg.create_task(self.scheduler.run()),
                    tg.create_task(self.tasks.run()),
                    tg.create_task(self._flush_history()),
                    tg.create_task(self.share.run()),
                ]
                if self.membership is not None:
                    background.append(tg.create_task(self.membership.run()))
                if self.placer is not None:
                    background.append(tg.create_task(self.placer.run()))
                await stop.wait()
                for task in background:
                    task.cancel()
            if self.membership is not None:
                await self.membership.leave()
            if resp_server is not None:
                resp_server.close()
        finally:
            with contextlib.suppress(FileNotFoundError):
                (self.data_dir / API_INFO).unlink()
            for runner in reversed(runners):
                await runner.cleanup()
            await self.pool.close()
            self.history.close()
            await self.links.close()
            await client.close()
            log.info("peer %s stopped", self.peer_id)
