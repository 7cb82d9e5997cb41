"""What ``callbox serve`` calls at start: a CA once, and a current leaf for this machine."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from callbox.errors import CertError, UnsafeFile

from . import clock
from .addresses import default_hosts
from .ca import create_ca, key_matches, load_ca_cert
from .files import ensure_dir, read_bytes
from .leaf import create_leaf
from .names import cert_names, normalize_hosts
from .paths import CertPaths

logger = logging.getLogger(__name__)

RENEW_BEFORE = timedelta(days=30)


@dataclass(frozen=True)
class ServerCert:
    """The files a TLS server needs, what they cover, and what this call had to create."""

    ca_path: Path
    cert_path: Path
    key_path: Path
    names: tuple[str, ...]
    not_after: datetime
    created_ca: bool
    renewed_leaf: bool


def _reusable_leaf(
    paths: CertPaths, ca_cert: x509.Certificate, names: tuple[str, ...]
) -> x509.Certificate | str:
    """The current leaf if it can be served as it is, else why it must be (re)created."""
    if not paths.cert.is_file() or not paths.key.is_file():
        return "no certificate yet"
    try:
        leaf = x509.load_pem_x509_certificate(read_bytes(paths.cert, "certificate"))
        key = serialization.load_pem_private_key(
            read_bytes(paths.key, "key", secret=True), password=None
        )
    except UnsafeFile:
        raise  # never quietly replaced: someone else may be at work in this dir
    except (CertError, ValueError, TypeError) as exc:
        return f"unreadable certificate or key ({exc})"
    if not key_matches(leaf, key):
        return "key does not match certificate"
    try:
        leaf.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return "not signed by the current CA"
    if set(cert_names(leaf)) != set(names):
        return "host names or addresses changed"
    now = clock.now()
    if leaf.not_valid_before_utc > now:
        return "not valid yet (clock moved back?)"
    if leaf.not_valid_after_utc - now < RENEW_BEFORE:
        return f"expires {leaf.not_valid_after_utc:%Y-%m-%d}"
    return leaf


def ensure_server_cert(data_dir: Path, hosts: Sequence[str] | None = None) -> ServerCert:
    """Make sure ``data_dir`` holds a CA and a current server certificate; return their files.

    The CA is created only if there is none (and reused on every later run, so devices
    keep trusting it). The leaf, for ``hosts`` (default: ``default_hosts()``), is created
    if missing and renewed when its names differ from ``hosts``, when it expires within
    30 days, when it was not signed by the current CA, or when it or its key is unusable;
    otherwise it is left untouched. Raises ``CertError`` (or a subclass) on failure, e.g.
    ``CAKeyMissing`` when a renewal is needed but the CA key is gone.
    """
    names = normalize_hosts(default_hosts() if hosts is None else hosts)
    paths = CertPaths.in_dir(data_dir)
    ensure_dir(data_dir)
    created_ca = False
    if not paths.ca_cert.exists():
        create_ca(data_dir)  # refuses, rather than overwrites, a CA key without its certificate
        created_ca = True
    ca_cert = load_ca_cert(data_dir)

    current = _reusable_leaf(paths, ca_cert, names)
    if isinstance(current, x509.Certificate):
        logger.debug("reusing certificate %s", paths.cert)
        return ServerCert(
            ca_path=paths.ca_cert,
            cert_path=paths.cert,
            key_path=paths.key,
            names=cert_names(current),
            not_after=current.not_valid_after_utc,
            created_ca=created_ca,
            renewed_leaf=False,
        )
    logger.info("creating certificate %s: %s", paths.cert, current)
    info = create_leaf(data_dir, names)
    return ServerCert(
        ca_path=paths.ca_cert,
        cert_path=info.cert_path,
        key_path=info.key_path,
        names=info.names,
        not_after=info.not_after,
        created_ca=created_ca,
        renewed_leaf=True,
    )
