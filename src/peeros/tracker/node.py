"""The tracker process: PKI on first start, SQLite state, the mTLS cluster-plane server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from peeros.config import TrackerSettings
from peeros.db import TrackerDB
from peeros.fsutil import write_atomic, write_json
from peeros.net.client import ClusterClient
from peeros.net.link_server import LinkServer
from peeros.net.server import cluster_auth, make_app, start_site
from peeros.security import identity, pki
from peeros.tracker import owned_routes
from peeros.tracker.owned import OwnedRegistry
from peeros.tracker.owned_repair import repair_loop
from peeros.tracker.routes import OPEN_PATHS, SERVICE, add_routes, link_ops
from peeros.tracker.service import TrackerService
from peeros.tracker.share_index import ShareIndexService, add_share_routes

log = logging.getLogger(__name__)

TRACKER_INFO = "tracker.json"
DB_FILE = "tracker.db"


def prepare(settings: TrackerSettings) -> tuple[pki.ClusterCA, pki.JoinToken]:
    """Create (first start) or load the CA, join token, and the tracker's own certificate."""
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    ca = pki.load_or_create_ca(data_dir)
    token = pki.load_or_create_token(data_dir, ca)
    me = identity.load_or_create(data_dir)
    hosts = tuple(dict.fromkeys((settings.host, "127.0.0.1", "localhost", *settings.cert_hosts)))
    cert = ca.issue(me.public_key, "tracker", hosts)
    write_atomic(data_dir / pki.NODE_CERT_FILE, pki.cert_pem(cert).encode())
    return ca, token


async def run_tracker(settings: TrackerSettings, stop: asyncio.Event) -> None:
    ca, token = prepare(settings)
    creds = pki.Credentials.from_dir(settings.data_dir)
    enroll_ca = pki.enrollment_ca(ca.fingerprint)
    ssl_ctx = pki.server_context(creds, extra_ca_pem=pki.cert_pem(enroll_ca.cert))
    db = TrackerDB(settings.data_dir / DB_FILE)
    service = TrackerService(db, ca, token, settings.dead_after)
    app = make_app([cluster_auth(ca.cert.subject, OPEN_PATHS)])
    app[SERVICE] = service
    add_routes(app)
    LinkServer(link_ops(service)).add_route(app)
    share_index = ShareIndexService(db, service.registry, service.clock, settings.share_replicas)
    add_share_routes(app, share_index)
    owned = app[owned_routes.OWNED] = OwnedRegistry(db, service.registry)
    owned_routes.add_routes(app)
    owned_client = ClusterClient(pki.client_context(creds))
    runner, port = await start_site(app, settings.host, settings.port, ssl_ctx)
    service.address = f"{settings.host}:{port}"
    write_json(
        settings.data_dir / TRACKER_INFO,
        {"address": service.address, "pid": os.getpid(), "ca_fingerprint": ca.fingerprint},
    )
    log.info("tracker listening on %s (%d peers known)", service.address, len(service.registry))
    try:
        async with asyncio.TaskGroup() as tg:
            sweeper = tg.create_task(_sweep_loop(service, settings.sweep_interval))
            repairer = tg.create_task(
                repair_loop(owned, owned_client, settings.sweep_interval, settings.dead_after)
            )
            await stop.wait()
            sweeper.cancel()
            repairer.cancel()
    finally:
        await runner.cleanup()
        await owned_client.close()
        db.close()
        with contextlib.suppress(FileNotFoundError):
            (settings.data_dir / TRACKER_INFO).unlink()
        log.info("tracker stopped")


async def _sweep_loop(service: TrackerService, interval: float) -> None:
    while True:
        service.sweep()
        await asyncio.sleep(interval)
