"""Trusting the local CA on this machine, like ``mkcert -install``: system store and NSS.

Every store is reported as an ``InstallResult``; a store that is missing or not writable is
a result with ``ok=False`` and a message saying what to do, never an exception.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from callbox.errors import CANotFound, CertError, CertWriteError

from .ca import fingerprint
from .files import CERT_MODE, read_bytes, write_atomic

logger = logging.getLogger(__name__)

# Non-root PATHs on Debian lack the sbin dirs where update-ca-certificates lives.
_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")
_TIMEOUT = 30.0


@dataclass(frozen=True)
class InstallResult:
    """The outcome for one trust store: its name, success, and a message for the user."""

    store: str
    ok: bool
    message: str


@dataclass(frozen=True, slots=True)
class SystemStore:
    """A system trust store: a directory of extra anchors and the command that rebuilds it."""

    name: str
    anchors_dir: Path
    refresh: tuple[str, ...]
    suffix: str = ".crt"


SYSTEM_STORES: tuple[SystemStore, ...] = (
    SystemStore("debian", Path("/usr/local/share/ca-certificates"), ("update-ca-certificates",)),
    SystemStore(
        "fedora", Path("/etc/pki/ca-trust/source/anchors"), ("update-ca-trust", "extract"), ".pem"
    ),
)


def _run(command: Sequence[str]) -> str | None:
    """Run ``command``; ``None`` on success, else a one-line reason."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{command[0]} failed: {exc}"
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        return f"{Path(command[0]).name} exited with {done.returncode}: " + (
            detail[-1] if detail else "no output"
        )
    return None


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK)


def _install_system(pem: bytes, fp8: str, stores: Sequence[SystemStore]) -> InstallResult:
    store = next((s for s in stores if s.anchors_dir.is_dir()), None)
    if store is None:
        return InstallResult(
            "system",
            False,
            "no supported system trust store found; "
            "trust the CA manually (see your OS documentation)",
        )
    target = store.anchors_dir / f"callbox-{fp8}{store.suffix}"
    if not _writable(store.anchors_dir):
        return InstallResult(
            "system",
            False,
            f"no permission to write {store.anchors_dir}; "
            "re-run with sudo to trust the CA system-wide",
        )
    search = [*os.environ.get("PATH", os.defpath).split(os.pathsep), *_SBIN]
    # No empty entries: shutil.which would read one as the current directory.
    refresh = shutil.which(store.refresh[0], path=os.pathsep.join(d for d in search if d))
    if refresh is None:
        return InstallResult(
            "system",
            False,
            f"{store.refresh[0]} not found; cannot update the {store.name} trust store",
        )
    try:
        write_atomic(target, pem, CERT_MODE)
    except CertWriteError as exc:
        hint = "; re-run with sudo" if isinstance(exc.__cause__, PermissionError) else ""
        return InstallResult("system", False, f"{exc}{hint}")
    problem = _run([refresh, *store.refresh[1:]])
    if problem:
        return InstallResult("system", False, f"copied to {target} but {problem}")
    logger.info("installed CA in the system store as %s", target)
    return InstallResult("system", True, f"installed as {target}")


def nss_databases(home: Path) -> list[Path]:
    """NSS databases under ``home``: the shared one (Chrome/Chromium) and Firefox profiles.

    The shared ``~/.pki/nssdb`` is listed even if it does not exist yet; profiles count
    only when they hold a ``cert9.db`` (the SQL format ``certutil -d sql:`` reads).
    """
    databases = [home / ".pki" / "nssdb"]
    for root in (home / ".mozilla/firefox", home / "snap/firefox/common/.mozilla/firefox"):
        if root.is_dir():
            databases.extend(sorted(p.parent for p in root.glob("*/cert9.db")))
    return databases


def _install_nss(ca_path: Path, nickname: str, home: Path) -> list[InstallResult]:
    certutil = shutil.which("certutil")
    if certutil is None:
        return [
            InstallResult(
                "nss",
                False,
                "certutil not found: install libnss3-tools to trust the CA in Firefox and Chrome",
            )
        ]
    results: list[InstallResult] = []
    for db in nss_databases(home):
        store = f"nss:{db}"
        if not (db / "cert9.db").exists():
            # Chrome creates ~/.pki/nssdb on first start; creating it now means a later
            # first start already trusts the CA.
            try:
                db.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:
                results.append(InstallResult(store, False, f"cannot create {db}: {exc}"))
                continue
            problem = _run([certutil, "-N", "-d", f"sql:{db}", "--empty-password"])
            if problem:
                results.append(InstallResult(store, False, problem))
                continue
        # "C,,": a trusted CA for TLS servers, not for e-mail or code signing (as mkcert).
        problem = _run(
            [certutil, "-A", "-d", f"sql:{db}", "-t", "C,,", "-n", nickname, "-i", str(ca_path)]
        )
        if problem:
            results.append(InstallResult(store, False, problem))
        else:
            logger.info("installed CA in NSS database %s", db)
            results.append(InstallResult(store, True, f"installed in {db} as {nickname!r}"))
    return results


def nss_nickname(cert: x509.Certificate) -> str:
    """The name the CA gets in NSS databases, unique per CA."""
    return f"callbox development CA {fingerprint(cert)[:8]}"


def install_ca(
    ca_path: Path,
    *,
    system_stores: Sequence[SystemStore] = SYSTEM_STORES,
    nss: bool = True,
) -> list[InstallResult]:
    """Trust the CA at ``ca_path`` in the system store and the user's NSS databases.

    System: the first of ``system_stores`` whose directory exists gets a copy named
    ``callbox-<fingerprint8>`` and is refreshed (root needed). NSS: ``~/.pki/nssdb``
    (created if missing) and every Firefox profile with a ``cert9.db``, via ``certutil``;
    ``~`` is ``$HOME``. Installing again is harmless. Raises ``CANotFound`` if there is no
    CA at ``ca_path`` and ``CertError`` if it is not a certificate; stores only report.
    """
    if not ca_path.is_file():
        raise CANotFound(f"no CA certificate at {ca_path}; create the CA first")
    pem = read_bytes(ca_path, "CA certificate")
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise CertError(f"cannot parse CA certificate {ca_path}: {exc}") from exc
    results = [_install_system(pem, fingerprint(cert)[:8], system_stores)]
    if nss:
        results.extend(_install_nss(ca_path, nss_nickname(cert), Path.home()))
    return results
