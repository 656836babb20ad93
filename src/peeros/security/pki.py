"""The cluster PKI: CA, join token, certificates and TLS contexts.

Trust model (see docs/security.md):

* The tracker creates the **cluster CA** on its first start. Every node holds a
  certificate from it whose public key is the node's identity key, so the peer id of a
  caller is *derived from its verified certificate*, never read from a field it sends.
* The **join token** ``peeros1.<ca-sha256>.<secret>`` pins the CA (the kubeadm
  discovery-hash idea) and carries the enrollment secret.
* Cluster-plane TLS always *requires* a client certificate. A node that is not yet a
  member uses an **enrollment certificate** issued by the *enrollment CA*, whose key is
  derived from the CA fingerprint: anyone who holds a token can make one, and it only opens
  ``/v1/ca`` and ``/v1/enroll``, where the secret is checked (wrong secret → 403). A
  client with no certificate, or one from another CA, fails the handshake.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from peeros.errors import BadRequest, Forbidden
from peeros.fsutil import write_atomic, write_private
from peeros.security.identity import Identity, peer_id_of

TOKEN_PREFIX = "peeros1"
CA_KEY_FILE = "ca.key"
CA_CERT_FILE = "ca.crt"
NODE_CERT_FILE = "node.crt"
TOKEN_FILE = "join-token"
CERT_LIFETIME = dt.timedelta(days=365)
CA_LIFETIME = dt.timedelta(days=3650)
ENROLLMENT_CA_NAME = "PeerOS enrollment CA"
_CLOCK_SKEW = dt.timedelta(minutes=5)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER encoding, lower-case hex."""
    return cert.fingerprint(hashes.SHA256()).hex()


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def load_cert_pem(pem: str | bytes) -> x509.Certificate:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise BadRequest(f"not a PEM certificate: {exc}") from exc


def cert_peer_id(cert: x509.Certificate) -> str:
    """The peer id proven by a certificate: derived from its public key."""
    key = cert.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise Forbidden("certificate key is not Ed25519")
    return peer_id_of(key)


# --- join token -----------------------------------------------------------------------


@dataclass(frozen=True)
class JoinToken:
    ca_fingerprint: str
    secret: str

    def __str__(self) -> str:
        return f"{TOKEN_PREFIX}.{self.ca_fingerprint}.{self.secret}"

    @classmethod
    def parse(cls, text: str) -> JoinToken:
        parts = text.strip().split(".")
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
            raise BadRequest("join token is malformed: expected peeros1.<ca-sha256>.<secret>")
        fp, secret = parts[1], parts[2]
        if len(fp) != 64 or any(c not in "0123456789abcdef" for c in fp):
            raise BadRequest("join token is malformed: the CA fingerprint must be 64 hex digits")
        if not 16 <= len(secret) <= 128:
            raise BadRequest("join token is malformed: the secret has the wrong length")
        return cls(fp, secret)

    def secret_matches(self, offered: str) -> bool:
        return hmac.compare_digest(self.secret.encode(), offered.encode())


# --- the cluster CA (tracker side) ----------------------------------------------------


@dataclass(frozen=True)
class ClusterCA:
    key: Ed25519PrivateKey
    cert: x509.Certificate

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.cert)

    def issue(
        self,
        subject_key: Ed25519PublicKey,
        common_name: str,
        hosts: tuple[str, ...] = (),
        lifetime: dt.timedelta = CERT_LIFETIME,
    ) -> x509.Certificate:
        return _issue(self.key, self.cert.subject, subject_key, common_name, hosts, lifetime)

    def sign_csr(self, csr_pem: str) -> tuple[str, x509.Certificate]:
        """Issue a member certificate for a CSR; the peer id comes from the CSR's key."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem.encode())
        except ValueError as exc:
            raise BadRequest(f"csr_pem is not a PEM certificate signing request: {exc}") from exc
        if not csr.is_signature_valid:
            raise BadRequest("csr_pem: the CSR signature does not verify")
        key = csr.public_key()
        if not isinstance(key, Ed25519PublicKey):
            raise BadRequest("csr_pem: the key must be Ed25519")
        peer_id = peer_id_of(key)
        return peer_id, self.issue(key, peer_id)


def _issue(
    issuer_key: Ed25519PrivateKey,
    issuer_name: x509.Name,
    subject_key: Ed25519PublicKey,
    common_name: str,
    hosts: tuple[str, ...],
    lifetime: dt.timedelta,
) -> x509.Certificate:
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer_name)
        .public_key(subject_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, None)


def _self_signed_ca(
    key: Ed25519PrivateKey, common_name: str, start: dt.datetime
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, None)
    )


def load_or_create_ca(data_dir: Path) -> ClusterCA:
    """The tracker's CA: ``ca.key`` (0600) and ``ca.crt``, made on the first start."""
    key_path, cert_path = data_dir / CA_KEY_FILE, data_dir / CA_CERT_FILE
    if key_path.exists() and cert_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{key_path} does not hold an Ed25519 key")
        return ClusterCA(key, load_cert_pem(cert_path.read_bytes()))
    key = Ed25519PrivateKey.generate()
    cert = _self_signed_ca(key, f"PeerOS cluster CA {secrets.token_hex(4)}", _now() - _CLOCK_SKEW)
    write_private(key_path, Identity(key).private_pem())
    write_atomic(cert_path, cert_pem(cert).encode())
    return ClusterCA(key, cert)


def load_or_create_token(data_dir: Path, ca: ClusterCA) -> JoinToken:
    path = data_dir / TOKEN_FILE
    if path.exists():
        return JoinToken.parse(path.read_text())
    token = JoinToken(ca.fingerprint, secrets.token_urlsafe(24).replace(".", "x"))
    write_private(path, (str(token) + "\n").encode())
    return token


# --- the enrollment CA (public by design) ---------------------------------------------

_ENROLLMENT_EPOCH = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def enrollment_ca(ca_fingerprint: str) -> ClusterCA:
    """The enrollment CA of a cluster, derived from its CA fingerprint.

    Its private key is computable by anyone who knows the fingerprint; that is the point:
    it lets a joining node complete a TLS handshake that always requires a client
    certificate, and the tracker lets such a connection reach only the enrollment routes.
    """
    seed = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"peeros enrollment ca v1"
    ).derive(bytes.fromhex(ca_fingerprint))
    key = Ed25519PrivateKey.from_private_bytes(seed)
    return ClusterCA(key, _self_signed_ca(key, ENROLLMENT_CA_NAME, _ENROLLMENT_EPOCH))


def make_csr(identity: Identity) -> str:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_name(identity.peer_id))
        .sign(identity.key, None)
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


# --- node credentials and TLS contexts ------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """What a node needs for cluster-plane TLS: its key, its certificate, the CA."""

    key_path: Path
    cert_path: Path
    ca_pem: str

    @classmethod
    def from_dir(cls, data_dir: Path) -> Credentials:
        return cls(
            data_dir / "node.key", data_dir / NODE_CERT_FILE, (data_dir / CA_CERT_FILE).read_text()
        )


def _base(purpose: ssl._SSLMethod) -> ssl.SSLContext:
    ctx = ssl.SSLContext(purpose)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def server_context(creds: Credentials, extra_ca_pem: str | None = None) -> ssl.SSLContext:
    """A cluster-plane server context: a client certificate from our CA is required."""
    ctx = _base(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(creds.cert_path, creds.key_path)
    ctx.load_verify_locations(cadata=creds.ca_pem)
    if extra_ca_pem:
        ctx.load_verify_locations(cadata=extra_ca_pem)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(creds: Credentials, *, verify_server: bool = True) -> ssl.SSLContext:
    """A cluster-plane client context presenting ``creds``.

    Servers are verified against the cluster CA (any member may serve); host names are
    not checked because nodes are addressed by ``host:port`` and identified by peer id.
    """
    ctx = _base(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if verify_server:
        ctx.load_verify_locations(cadata=creds.ca_pem)
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(creds.cert_path, creds.key_path)
    return ctx


def ca_digest(pem: str) -> str:
    """Fingerprint of a PEM CA certificate, as pinned in join tokens."""
    return fingerprint(load_cert_pem(pem))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
