"""The start-up banner of `callbox serve`: URLs (LAN first), a QR code, the CA to trust."""

from __future__ import annotations

import io
import ipaddress
from pathlib import Path

import segno

from callbox.server.runner import Listening


def _url(scheme: str, host: str, port: int) -> str:
    if ":" in host:
        host = f"[{host}]"
    default = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
    return f"{scheme}://{host}" if default else f"{scheme}://{host}:{port}"


def urls(listening: Listening, lan_addresses: list[str]) -> tuple[list[str], list[str]]:
    """(LAN URLs, this-machine URLs) for what the server listens on."""
    host = listening.host
    if host in ("0.0.0.0", "::", ""):
        lan = [a for a in lan_addresses if host == "::" or ":" not in a]
        local = ["localhost"]
    else:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        lan, local = ([], [host]) if loopback else ([host], [])
    return (
        [_url(listening.scheme, h, listening.port) for h in lan],
        [_url(listening.scheme, h, listening.port) for h in local],
    )


def format_banner(
    listening: Listening, lan_addresses: list[str], ca_path: Path | None, *, password: bool
) -> str:
    lan, local = urls(listening, lan_addresses)
    out = io.StringIO()
    out.write("callbox is ready. Open on two devices:\n")
    for url in lan:
        out.write(f"  {url}    (other devices on this network)\n")
    for url in local:
        out.write(f"  {url}    (this machine)\n")
    if lan:
        out.write(f"\nScan with a phone on the same Wi-Fi ({lan[0]}):\n")
        qr = segno.make(lan[0], error="l")
        qr.terminal(out=out, compact=True)
    if ca_path is not None:
        out.write(
            f"\nOther devices must trust this CA once: {ca_path}\n"
            "  (computers: `callbox cert install` there, or import it in the browser;\n"
            "   phones: send the file to the phone and install it as a CA certificate)\n"
        )
    if not password:
        out.write("No --password: anyone who can reach this address can place calls.\n")
    out.write("Press Ctrl-C to stop.")
    return out.getvalue()
