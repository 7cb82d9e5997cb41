"""Host names and IP addresses as certificate subject alternative names (SANs)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from cryptography import x509

from callbox.errors import CertError

# Letters, digits, '-' and '_' (seen in real LAN host names), optionally a leading "*." wildcard.
_HOSTNAME = re.compile(r"^(\*\.)?[0-9a-z_-]([0-9a-z._-]*[0-9a-z_-])?$")


def normalize_host(host: str) -> str:
    """Return the canonical spelling of ``host`` (an IP address or a DNS name).

    IP addresses get their compressed form (``[::1]`` and ``0:0::1`` become ``::1``); names
    are lower-cased, lose a trailing dot and are IDNA-encoded. Raises ``CertError`` for
    anything that is neither.
    """
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if "%" in text:
        raise CertError(f"invalid host {host!r}: a scoped IPv6 address cannot be in a certificate")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    name = text.rstrip(".").lower()
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise CertError(f"invalid host {host!r}: {exc}") from exc
    labels = name.split(".")
    if (
        not _HOSTNAME.match(name)
        or len(name) > 253
        or any(not 0 < len(label) <= 63 for label in labels)
        or any(label.startswith("-") or label.endswith("-") for label in labels)
        # "10.0.1" is a mistyped address, not a name: no top-level label is all digits.
        or labels[-1].isdigit()
    ):
        raise CertError(f"invalid host {host!r}: not an IP address or a valid host name")
    return name


def normalize_hosts(hosts: Iterable[str]) -> tuple[str, ...]:
    """Normalize every host, dropping duplicates and keeping the first-seen order."""
    names = tuple(dict.fromkeys(normalize_host(host) for host in hosts))
    if not names:
        raise CertError("a certificate needs at least one host name or IP address")
    return names


def general_names(names: Iterable[str]) -> list[x509.GeneralName]:
    """SAN entries for normalized names: ``IPAddress`` for addresses, ``DNSName`` otherwise."""
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return entries


def cert_names(cert: x509.Certificate) -> tuple[str, ...]:
    """The DNS names and IP addresses in ``cert``'s SAN extension, in certificate order."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    names: list[str] = []
    for entry in san:
        if isinstance(entry, x509.DNSName):
            names.append(entry.value)
        elif isinstance(entry, x509.IPAddress):
            names.append(str(entry.value))
    return tuple(names)
