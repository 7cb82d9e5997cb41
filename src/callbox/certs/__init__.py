"""Local HTTPS certificates, mkcert built in: a CA per data dir, server certificates, trust.

``ensure_server_cert`` is what ``callbox serve`` calls; the rest backs ``callbox cert``.
Functions return paths and info objects and raise ``callbox.errors.CertError``; none print.
"""

from __future__ import annotations

from .addresses import default_hosts, local_addresses
from .ca import CAInfo, PrivateKey, create_ca, load_ca
from .leaf import LeafInfo, create_leaf
from .paths import CertPaths, default_data_dir
from .server import ServerCert, ensure_server_cert
from .truststore import InstallResult, SystemStore, install_ca

__all__ = [
    "CAInfo",
    "CertPaths",
    "InstallResult",
    "LeafInfo",
    "PrivateKey",
    "ServerCert",
    "SystemStore",
    "create_ca",
    "create_leaf",
    "default_data_dir",
    "default_hosts",
    "ensure_server_cert",
    "install_ca",
    "load_ca",
    "local_addresses",
]
