"""The machine's own names and addresses, the default contents of the server certificate."""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterable

import psutil

from callbox.errors import CertError

from .names import normalize_host

logger = logging.getLogger(__name__)

# Bridges of containers and VMs: private addresses a phone on the LAN cannot reach, so they
# rank after real interfaces within their group (the first address is the one in the QR code).
_VIRTUAL_PREFIXES = (
    "docker",
    "br-",
    "veth",
    "virbr",
    "vmnet",
    "vboxnet",
    "lxcbr",
    "lxdbr",
    "podman",
    "cni",
    "flannel",
    "kube",
)


def order_addresses(pairs: Iterable[tuple[str, str]]) -> list[str]:
    """Filter and order ``(interface, address)`` pairs for a certificate and for display.

    Drops loopback, link-local IPv6 and anything unparsable; then sorts: private (LAN) IPv4
    first, other IPv4 (public, link-local 169.254/16, CGNAT) next, IPv6 last. Within a group,
    virtual bridges come after other interfaces; otherwise the input order is kept.
    """
    ranked: dict[str, tuple[int, int, int]] = {}
    for position, (interface, raw) in enumerate(pairs):
        try:
            address = ipaddress.ip_address(raw.split("%", 1)[0])
        except ValueError:
            continue
        if address.is_loopback or (address.version == 6 and address.is_link_local):
            continue
        if address.version == 6:
            group = 2
        elif address.is_private and not address.is_link_local:
            group = 0
        else:
            group = 1
        virtual = int(interface.startswith(_VIRTUAL_PREFIXES))
        ranked.setdefault(str(address), (group, virtual, position))
    return sorted(ranked, key=ranked.__getitem__)


def local_addresses() -> list[str]:
    """Every non-loopback, non-link-local-IPv6 address of this machine, LAN IPv4 first."""
    pairs = [
        (interface, entry.address)
        for interface, entries in psutil.net_if_addrs().items()
        for entry in entries
        if entry.family in (socket.AF_INET, socket.AF_INET6)
    ]
    return order_addresses(pairs)


def default_hosts() -> list[str]:
    """localhost, 127.0.0.1, ::1, the host name and every local address, without duplicates.

    A host name that cannot appear in a certificate (e.g. with spaces) is left out.
    """
    hosts = ["localhost", "127.0.0.1", "::1"]
    hostname = socket.gethostname()
    try:
        hosts.append(normalize_host(hostname))
    except CertError:
        logger.warning("host name %r is not valid in a certificate; leaving it out", hostname)
    hosts.extend(local_addresses())
    return list(dict.fromkeys(hosts))
