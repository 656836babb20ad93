"""Server plumbing shared by both planes: error mapping, body parsing, auth, sites.

Routes stay thin: they call :func:`read_model`, one method of the node, and
:func:`json_response`. Everything that can go wrong is turned into the JSON error body
of :mod:`peeros.errors` here, once.
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from aiohttp import web
from cryptography import x509
from pydantic import BaseModel, ValidationError

from peeros.config import MAX_JSON_BODY
from peeros.errors import BadRequest, Forbidden, PeerOSError, Unauthorized
from peeros.protocol import PROTOCOL_HEADER, PROTOCOL_VERSION, ErrorBody, ErrorDetail
from peeros.security.pki import cert_peer_id

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Request keys set by the cluster-plane middleware.
PEER_ID = web.RequestKey("peer_id", str)
IS_MEMBER = web.RequestKey("is_member", bool)
MAX_BODY = web.AppKey("max_body", int)


def error_response(status: int, code: str, message: str) -> web.Response:
    body = ErrorBody(error=ErrorDetail(code=code, message=message))
    return web.json_response(body.model_dump(), status=status)


def json_response(
    payload: BaseModel | list[Any] | dict[str, Any], status: int = 200
) -> web.Response:
    text = payload.model_dump_json() if isinstance(payload, BaseModel) else json.dumps(payload)
    return web.Response(text=text, status=status, content_type="application/json")


def describe_validation(exc: ValidationError) -> str:
    """One line naming each invalid field: ``load.slots: Input should be >= 1``."""
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg']}")
    return "invalid request: " + "; ".join(parts)


async def read_model(request: web.Request, cls: type[M]) -> M:
    """Parse the JSON body into ``cls``; a bad body is a 400 that names the problem."""
    raw = await request.read()  # raises 413 past client_max_size
    try:  # pydantic parses JSON several times faster than json.loads + model_validate
        return cls.model_validate_json(raw)
    except ValidationError:
        pass  # take the long way, which names the problem as it always has
    try:
        data = json.loads(raw or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadRequest(f"request body must be a JSON object, got {type(data).__name__}")
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(describe_validation(exc)) from exc


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except PeerOSError as exc:
        return error_response(exc.status, exc.code, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        message = {
            404: f"no such route: {request.method} {request.path}",
            405: f"method {request.method} not allowed on {request.path}",
            413: f"request body too large (limit {request.app[MAX_BODY]} bytes)",
        }
        return error_response(
            exc.status,
            code.get(exc.status, "bad_request"),
            message.get(exc.status, exc.reason),
        )
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal", "internal error (see the node's log)")


def protocol_check() -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        offered = request.headers.get(PROTOCOL_HEADER)
        if offered is not None and offered != str(PROTOCOL_VERSION):
            raise BadRequest(
                f"protocol version {offered} is not supported (this node speaks {PROTOCOL_VERSION})"
            )
        return await handler(request)

    return middleware


def bearer_auth(token: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    """User-plane auth: ``Authorization: Bearer <token>``, compared in constant time."""
    expected = token.encode()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        scheme, _, offered = header.partition(" ")
        if scheme.lower() != "bearer" or not offered:
            raise Unauthorized("missing API token (send 'Authorization: Bearer <token>')")
        if not hmac.compare_digest(offered.strip().encode(), expected):
            raise Unauthorized("wrong API token")
        return await handler(request)

    return middleware


def cluster_auth(
    ca_subject: x509.Name,
    open_paths: Iterable[str] = (),
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Cluster-plane identity: the caller's peer id comes from its verified certificate.

    TLS has already verified the chain. Members hold certificates issued by the cluster
    CA; any other trusted issuer (the enrollment CA) only reaches ``open_paths``.
    """
    allowed = frozenset(open_paths)
    cache: dict[bytes, tuple[str, bool]] = {}

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:
            raise Unauthorized("a cluster certificate is required")
        if der not in cache:
            cert = x509.load_der_x509_certificate(der)
            if len(cache) > 4096:
                cache.clear()
            cache[der] = (cert_peer_id(cert), cert.issuer == ca_subject)
        peer_id, member = cache[der]
        if not member and request.path not in allowed:
            raise Forbidden("only cluster members may use this route; enroll first")
        request[PEER_ID] = peer_id
        request[IS_MEMBER] = member
        return await handler(request)

    return middleware


def make_app(middlewares: list[Any], max_body: int = MAX_JSON_BODY) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, protocol_check(), *middlewares],
        client_max_size=max_body,
    )
    app[MAX_BODY] = max_body
    return app


async def start_site(
    app: web.Application, host: str, port: int, ssl_context: Any = None
) -> tuple[web.AppRunner, int]:
    """Start ``app`` on ``host:port`` (0 = any free port); return the runner and the port."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context, reuse_address=True)
    await site.start()
    server = site._server
    assert server is not None
    sockets: list[socket.socket] = list(getattr(server, "sockets", []))
    return runner, sockets[0].getsockname()[1]
