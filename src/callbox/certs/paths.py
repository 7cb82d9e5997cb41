"""Where the certificate files live: the data dir and the four file names in it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

DATA_DIR_ENV = "CALLBOX_DATA_DIR"


def default_data_dir() -> Path:
    """Return ``$CALLBOX_DATA_DIR`` if set (and not empty), else the per-user data dir.

    The per-user dir is platformdirs' ``user_data_dir("callbox")``, e.g.
    ``~/.local/share/callbox`` on Linux (XDG), like mkcert's CAROOT.
    """
    override = os.environ.get(DATA_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    # appauthor=False: otherwise Windows nests the name twice (callbox\callbox).
    return Path(platformdirs.user_data_dir("callbox", appauthor=False))


@dataclass(frozen=True, slots=True)
class CertPaths:
    """The CA and server (leaf) certificate and key files of one data dir."""

    ca_cert: Path
    ca_key: Path
    cert: Path
    key: Path

    @classmethod
    def in_dir(cls, data_dir: Path) -> CertPaths:
        """The standard names inside ``data_dir``: ca.pem, ca-key.pem, cert.pem, key.pem."""
        return cls(
            ca_cert=data_dir / "ca.pem",
            ca_key=data_dir / "ca-key.pem",
            cert=data_dir / "cert.pem",
            key=data_dir / "key.pem",
        )
