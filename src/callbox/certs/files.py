"""File helpers for certificates: a private data dir, atomic writes with fixed modes, reads."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from callbox.errors import CertError, CertWriteError, UnsafeFile

KEY_MODE = 0o600
CA_KEY_MODE = 0o400  # like mkcert: the CA key is never rewritten in place, only replaced
CERT_MODE = 0o644
DIR_MODE = 0o700


def _cause(exc: OSError) -> str:
    return exc.strerror or str(exc)


def ensure_dir(path: Path) -> None:
    """Create ``path`` (mode 0700) if missing; an existing dir keeps its mode but must be
    safe (:func:`check_safe`)."""
    try:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise CertWriteError(f"cannot create directory {path}: {_cause(exc)}") from exc
    check_safe(path)


def check_safe(path: Path, *, secret: bool = False) -> None:
    """Refuse, like ssh does, a file or directory that another user could have planted or
    could change: owned by someone other than us (or root), writable by group or others,
    or, for a ``secret`` (a private key), readable by them. A planted CA would let its
    owner impersonate this server to every device that trusts it."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise CertError(f"cannot check {path}: {_cause(exc)}") from exc
    me = os.geteuid() if hasattr(os, "geteuid") else info.st_uid
    if info.st_uid not in (me, 0):
        raise UnsafeFile(
            f"{path} belongs to another user (uid {info.st_uid}): refusing to use it; "
            "use a data dir of your own (--data-dir)"
        )
    if info.st_mode & 0o022:
        raise UnsafeFile(
            f"{path} can be changed by other users (mode {info.st_mode & 0o777:o}): "
            f"run `chmod go-w {path}`"
        )
    if secret and info.st_mode & 0o077:
        raise UnsafeFile(
            f"{path} is a private key readable by other users (mode "
            f"{info.st_mode & 0o777:o}): run `chmod 600 {path}`"
        )


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` with ``mode`` so readers never see a partial file.

    The bytes go to a temp file in the same directory (same file system, so the rename is
    atomic), which gets its mode before any secret is written, and then replaces ``path``.
    Replacing works even when the old file is read-only (0400): only the directory matters.
    """
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise CertWriteError(f"cannot write {path}: {_cause(exc)}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            os.chmod(tmp_name, mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise CertWriteError(f"cannot write {path}: {_cause(exc)}") from exc


def read_bytes(path: Path, what: str, *, secret: bool = False) -> bytes:
    """Read a whole file, turning I/O problems into a ``CertError`` naming ``what`` and path;
    a file that is not safe to trust is refused (:func:`check_safe`)."""
    check_safe(path, secret=secret)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CertError(f"cannot read {what} {path}: {_cause(exc)}") from exc
