"""The peer's two web applications, with their routes and authentication, and the
local API's bearer token (a 0600 file in the data directory)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web
from cryptography import x509

from peeros.fsutil import write_private
from peeros.net.server import bearer_auth, cluster_auth, make_app
from peeros.peer import files_api, files_batch, kernel_api, local_api, owned_api, routes
from peeros.share import api as share_api

if TYPE_CHECKING:
    from peeros.peer.node import PeerNode

API_TOKEN = "api.token"
#: Task bodies (batches, pickled callables) may be large; JSON control bodies are not.
MAX_TASK_BODY = 64 << 20


def load_or_create_api_token(data_dir: Path) -> str:
    path = data_dir / API_TOKEN
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    write_private(path, (token + "\n").encode())
    return token


def build_apps(
    node: PeerNode, ca_subject: x509.Name, api_token: str
) -> tuple[web.Application, web.Application]:
    """``(cluster plane: mutual TLS, members only; user plane: bearer token)``."""
    cluster_app = make_app([cluster_auth(ca_subject)], MAX_TASK_BODY)
    cluster_app[routes.NODE] = node
    cluster_app[kernel_api.NODE] = node
    routes.add_routes(cluster_app)
    node.link_server.add_route(cluster_app)
    kernel_api.add_cluster_routes(cluster_app)
    api_app = make_app([bearer_auth(api_token)], MAX_TASK_BODY)
    api_app[local_api.NODE] = node
    api_app[kernel_api.NODE] = node
    local_api.add_routes(api_app)
    node.lane_server.add_route(api_app)
    kernel_api.add_user_routes(api_app)
    files_api.add_routes(cluster_app, api_app)
    files_batch.add_routes(cluster_app, api_app)
    owned_api.add_routes(cluster_app, api_app)
    share_api.add_routes(cluster_app, api_app, node.share)
    return cluster_app, api_app
