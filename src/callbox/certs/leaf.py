"""Server (leaf) certificates signed by the local CA."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from callbox.errors import CertError

from . import clock
from .ca import CLOCK_SKEW, PrivateKey, key_pem, load_ca, owner, signature_hash
from .files import CERT_MODE, KEY_MODE, write_atomic
from .names import general_names, normalize_hosts
from .paths import CertPaths

logger = logging.getLogger(__name__)

MAX_VALIDITY = timedelta(days=825)  # Apple's limit for TLS server certificates
LEAF_DAYS = 820  # plus the 1 day of clock skew, still under MAX_VALIDITY (mkcert: 2y3m)


@dataclass(frozen=True)
class LeafInfo:
    """A server certificate as written to disk: its files, names (SANs) and expiry."""

    cert_path: Path
    key_path: Path
    names: tuple[str, ...]
    not_after: datetime


def _authority_key_id(ca_cert: x509.Certificate, ca_key: PrivateKey) -> x509.AuthorityKeyIdentifier:
    """The AKI pointing at the CA: its own SKI when present, so the two match byte for byte."""
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def create_leaf(
    data_dir: Path,
    hosts: Sequence[str],
    *,
    cert_path: Path | None = None,
    key_path: Path | None = None,
    days: int = LEAF_DAYS,
) -> LeafInfo:
    """Create a key and a certificate for ``hosts``, signed by the CA in ``data_dir``.

    Host names become DNS SANs and addresses IP SANs (duplicates dropped, order kept).
    Output defaults to ``data_dir/cert.pem`` and ``data_dir/key.pem``; existing files are
    replaced. ``days`` (from now) is capped so the whole validity stays within 825 days.
    Raises ``CANotFound``/``CAKeyMissing`` without a usable CA, ``CertError`` for an invalid
    host or ``days``, and ``CertWriteError`` if a file cannot be written.
    """
    names = normalize_hosts(hosts)
    if days < 1 or CLOCK_SKEW + timedelta(days=days) > MAX_VALIDITY:
        limit = (MAX_VALIDITY - CLOCK_SKEW).days
        raise CertError(f"invalid validity of {days} days: must be between 1 and {limit}")
    ca_cert, ca_key = load_ca(data_dir)
    paths = CertPaths.in_dir(data_dir)
    cert_path = cert_path or paths.cert
    key_path = key_path or paths.key

    key = ec.generate_private_key(ec.SECP256R1())
    now = clock.now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(
                        NameOID.ORGANIZATION_NAME, "callbox development certificate"
                    ),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, owner()[:64]),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,  # ECDSA keys sign; only RSA key exchange enciphers
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        # Browsers only read names from SANs; the subject is informational (so not critical).
        .add_extension(x509.SubjectAlternativeName(general_names(names)), critical=False)
        .add_extension(_authority_key_id(ca_cert, ca_key), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, signature_hash(ca_key))
    )
    # Key first: if the certificate write then fails, ensure_server_cert sees a key that
    # does not match the old certificate and renews, instead of serving a mismatched pair.
    write_atomic(key_path, key_pem(key), KEY_MODE)
    write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), CERT_MODE)
    logger.info("created certificate %s for %s", cert_path, ", ".join(names))
    return LeafInfo(
        cert_path=cert_path,
        key_path=key_path,
        names=names,
        not_after=cert.not_valid_after_utc,
    )
