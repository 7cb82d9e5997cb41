"""The local certificate authority: created once per data dir, then only loaded."""

from __future__ import annotations

import getpass
import logging
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID

from callbox.errors import CAKeyMissing, CANotFound, CertError

from . import clock
from .files import CA_KEY_MODE, CERT_MODE, ensure_dir, read_bytes, write_atomic
from .paths import CertPaths

logger = logging.getLogger(__name__)

PrivateKey: TypeAlias = (
    ec.EllipticCurvePrivateKey
    | rsa.RSAPrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)
"""A CA key callbox can sign with: ours are ECDSA P-256; the others allow a CA made elsewhere."""
_SIGNING_KEYS = (
    ec.EllipticCurvePrivateKey,
    rsa.RSAPrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)

CA_VALIDITY = timedelta(days=3650)
CLOCK_SKEW = timedelta(days=1)  # start validity in the past so a slow clock still accepts it


@dataclass(frozen=True)
class CAInfo:
    """A CA as written to disk: its files, subject (RFC 4514) and expiry."""

    cert_path: Path
    key_path: Path
    subject: str
    not_after: datetime


def owner() -> str:
    """``user@host``, naming whose CA and certificates these are (as mkcert does)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. an arbitrary container uid
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def fingerprint(cert: x509.Certificate) -> str:
    """The certificate's SHA-256 fingerprint as lower-case hex."""
    return cert.fingerprint(hashes.SHA256()).hex()


def signature_hash(key: PrivateKey) -> hashes.SHA256 | None:
    """The hash to sign with: SHA-256, or none for EdDSA, which hashes internally."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return None
    return hashes.SHA256()


def key_matches(cert: x509.Certificate, key: PrivateKeyTypes) -> bool:
    """Whether ``key`` is the private half of ``cert``'s public key."""
    der = serialization.Encoding.DER
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_key().public_bytes(der, spki) == cert.public_key().public_bytes(der, spki)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM, the format mkcert and every TLS server read."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def create_ca(data_dir: Path, *, force: bool = False) -> CAInfo:
    """Create a new CA (ECDSA P-256, 10 years, path length 0) in ``data_dir``.

    Refuses with ``CertError`` when a CA certificate or key is already there, unless
    ``force``: replacing the CA makes every device that trusted the old one distrust
    certificates signed by the new one. Raises ``CertWriteError`` if a file cannot be written.
    """
    paths = CertPaths.in_dir(data_dir)
    if not force and paths.ca_cert.exists():
        raise CertError(
            f"a CA already exists at {paths.ca_cert}; replacing it needs --force "
            "(devices that trust the old CA will have to trust the new one)"
        )
    if not force and paths.ca_key.exists():
        raise CertError(
            f"found a CA key at {paths.ca_key} but no CA certificate; "
            "move the key away or replace it with force"
        )
    ensure_dir(data_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            # CN is limited to 64 characters; a long host name must not make this fail.
            x509.NameAttribute(NameOID.COMMON_NAME, f"callbox local CA {owner()}"[:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "callbox development CA"),
        ]
    )
    start = clock.now() - CLOCK_SKEW
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    # Key first: a failure between the two writes leaves a mismatch load_ca reports,
    # never a certificate whose key is lost.
    write_atomic(paths.ca_key, key_pem(key), CA_KEY_MODE)
    write_atomic(paths.ca_cert, cert.public_bytes(serialization.Encoding.PEM), CERT_MODE)
    logger.info("created CA %s (sha256 %s)", paths.ca_cert, fingerprint(cert)[:16])
    return CAInfo(
        cert_path=paths.ca_cert,
        key_path=paths.ca_key,
        subject=cert.subject.rfc4514_string(),
        not_after=cert.not_valid_after_utc,
    )


def load_ca_cert(data_dir: Path) -> x509.Certificate:
    """The CA certificate of ``data_dir``; ``CANotFound`` if there is none."""
    path = CertPaths.in_dir(data_dir).ca_cert
    if not path.is_file():
        raise CANotFound(f"no CA certificate at {path}; create the CA first")
    try:
        return x509.load_pem_x509_certificate(read_bytes(path, "CA certificate"))
    except ValueError as exc:
        raise CertError(f"cannot parse CA certificate {path}: {exc}") from exc


def load_ca(data_dir: Path) -> tuple[x509.Certificate, PrivateKey]:
    """The CA certificate and its private key, checked to belong together.

    Raises ``CANotFound`` without a CA certificate, ``CAKeyMissing`` when only the key is
    missing, and ``CertError`` when either cannot be parsed or they do not match.
    """
    cert = load_ca_cert(data_dir)
    path = CertPaths.in_dir(data_dir).ca_key
    if not path.is_file():
        raise CAKeyMissing(f"the CA key {path} is missing; it is needed to sign certificates")
    try:
        key = serialization.load_pem_private_key(
            read_bytes(path, "CA key", secret=True), password=None
        )
    except (ValueError, TypeError) as exc:
        raise CertError(f"cannot load CA key {path}: {exc}") from exc
    if not isinstance(key, _SIGNING_KEYS):
        raise CertError(f"CA key {path} is a {type(key).__name__}, which callbox cannot sign with")
    if not key_matches(cert, key):
        raise CertError(f"CA key {path} does not belong to the CA certificate")
    return cert, key
