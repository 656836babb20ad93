"""The PeerOS exception tree, mapped to HTTP status in exactly one place.

::

    PeerOSError                      500  something went wrong (base class)
    ├── BadRequest                   400  malformed or invalid input; the message names the field
    ├── Unauthorized                 401  missing or wrong local API token
    ├── Forbidden                    403  not allowed: wrong join token, not the owner
    ├── NotFound                     404  no such route, key, file, task or peer
    ├── Timeout                      408  a blocking operation (IPC wait) ran out of time
    ├── Conflict                     409  the request contradicts the current state
    ├── PayloadTooLarge              413  a body or value over its configured limit
    ├── QuotaExceeded                429  over a per-peer quota; nothing was changed
    ├── Unavailable                  503  a needed node (tracker, peer) cannot be reached
    │   └── Unreachable              503  ... not even connected to: nothing was sent
    └── ProtocolMismatch             400  the other side speaks another protocol version

Servers turn these into ``{"error": {"code": ..., "message": ...}}`` with the status
below; clients turn such a response back into the same exception class, so the CLI can
print one clear line and exit non-zero whatever side the error came from.
"""

from __future__ import annotations


class PeerOSError(Exception):
    """Base class of every error PeerOS reports on purpose."""

    status: int = 500
    code: str = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(PeerOSError):
    status = 400
    code = "bad_request"


class ProtocolMismatch(PeerOSError):
    status = 400
    code = "protocol_mismatch"


class Unauthorized(PeerOSError):
    status = 401
    code = "unauthorized"


class Forbidden(PeerOSError):
    status = 403
    code = "forbidden"


class NotFound(PeerOSError):
    status = 404
    code = "not_found"


class Timeout(PeerOSError):
    status = 408
    code = "timeout"


class Conflict(PeerOSError):
    status = 409
    code = "conflict"


class PayloadTooLarge(PeerOSError):
    status = 413
    code = "payload_too_large"


class QuotaExceeded(PeerOSError):
    status = 429
    code = "quota_exceeded"


class Unavailable(PeerOSError):
    status = 503
    code = "unavailable"


class Unreachable(Unavailable):
    """No connection could be made, so the request was certainly not delivered (safe to
    send elsewhere). Local knowledge only: on the wire it is an :class:`Unavailable`."""


_BY_CODE: dict[str, type[PeerOSError]] = {
    cls.code: cls
    for cls in (
        PeerOSError,
        BadRequest,
        ProtocolMismatch,
        Unauthorized,
        Forbidden,
        NotFound,
        Timeout,
        Conflict,
        PayloadTooLarge,
        QuotaExceeded,
        Unavailable,
    )
}

_BY_STATUS: dict[int, type[PeerOSError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: BadRequest,
    408: Timeout,
    409: Conflict,
    413: PayloadTooLarge,
    429: QuotaExceeded,
    503: Unavailable,
}


def from_wire(status: int, code: str | None, message: str) -> PeerOSError:
    """Rebuild the exception a server reported, by its code, else by its HTTP status."""
    cls = _BY_CODE.get(code or "") or _BY_STATUS.get(status, PeerOSError)
    return cls(message)
