"""Joining a cluster: pin the tracker's CA with the token, then trade a CSR for a certificate.

1. Present an *enrollment certificate* (see :mod:`peeros.security.pki`) and fetch the CA.
2. Refuse unless the CA's SHA-256 equals the fingerprint in the token (no trust on first
   use: a man in the middle cannot substitute its own CA).
3. Reconnect verifying the tracker against that CA, and only then send the token's
   secret with a CSR for the node's own key. Save ``ca.crt`` and ``node.crt``.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from peeros.errors import Forbidden, PeerOSError
from peeros.fsutil import write_atomic, write_private
from peeros.net.client import ClusterClient
from peeros.protocol import CAResponse, EnrollRequest, EnrollResponse
from peeros.security import pki
from peeros.security.identity import KEY_FILE, Identity

log = logging.getLogger(__name__)


async def enroll(
    data_dir: Path, tracker: str, token_text: str, ident: Identity, timeout: float = 10.0
) -> str:
    """Enroll this node with the tracker at ``tracker``; return the confirmed peer id."""
    token = pki.JoinToken.parse(token_text)
    boot = pki.enrollment_ca(token.ca_fingerprint).issue(
        ident.public_key, ident.peer_id, lifetime=dt.timedelta(hours=1)
    )
    boot_path = data_dir / ".enroll.crt"
    write_private(boot_path, pki.cert_pem(boot).encode())
    key_path = data_dir / KEY_FILE
    clients: list[ClusterClient] = []
    try:
        blind = ClusterClient(
            pki.client_context(pki.Credentials(key_path, boot_path, ""), verify_server=False),
            timeout,
        )
        clients.append(blind)
        ca = await blind.request(tracker, "GET", "/v1/ca", response=CAResponse)
        if pki.ca_digest(ca.ca_pem) != token.ca_fingerprint:
            raise Forbidden(
                f"the tracker at {tracker} presented a CA that does not match the join "
                "token's fingerprint; refusing to enroll"
            )
        pinned = ClusterClient(
            pki.client_context(pki.Credentials(key_path, boot_path, ca.ca_pem)), timeout
        )
        clients.append(pinned)
        req = EnrollRequest(secret=token.secret, csr_pem=pki.make_csr(ident))
        resp: EnrollResponse = await pinned.request(
            tracker, "POST", "/v1/enroll", req, EnrollResponse
        )
        if resp.peer_id != ident.peer_id:
            raise PeerOSError(
                f"tracker issued a certificate for {resp.peer_id}, not {ident.peer_id}"
            )
        cert = pki.load_cert_pem(resp.certificate_pem)
        if pki.cert_peer_id(cert) != ident.peer_id:
            raise PeerOSError("tracker issued a certificate for another key")
        write_atomic(data_dir / pki.CA_CERT_FILE, resp.ca_pem.encode())
        write_atomic(data_dir / pki.NODE_CERT_FILE, resp.certificate_pem.encode())
        log.info("enrolled as %s with the tracker at %s", ident.peer_id, tracker)
        return resp.peer_id
    finally:
        for client in clients:
            await client.close()
        boot_path.unlink(missing_ok=True)
