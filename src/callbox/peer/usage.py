"""What ``callbox call`` and ``callbox answer`` check before they start, in a module that
imports nothing of aiortc: a bad argument is one line and exit code 2 at once, not after
the ~0.7 s of CPU that importing the peer's media stack costs (``callbox check`` finds its
CA here too).
"""

from __future__ import annotations

import argparse
import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from callbox.errors import ConfigError

#: the longest chat line, in the characters the web client counts (UTF-16 code units)
MAX_CHAT_CHARS = 2000

_LOCAL_NAMES = {"localhost", "127.0.0.1", "::1"}


class UsageError(ConfigError):
    """Bad arguments found after parsing (exit code 2)."""


def chat_length(text: str) -> int:
    """Characters as JavaScript counts them (UTF-16 code units), which the limit is in."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def check_arguments(args: argparse.Namespace) -> None:
    """Raise :class:`UsageError` for a URL, ``--send``, ``--say`` or ``--record`` that
    can't work."""
    parts = urlsplit(args.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"URL must be http(s)://host[:port], not {args.url!r}")
    send: str = args.send
    device = send.startswith(("/dev/", "alsa:")) or "://" in send
    if send not in ("testsrc", "none") and not device and not Path(send).is_file():
        raise UsageError(f"--send {send}: no such file (or use testsrc, none, a device)")
    for text in args.say:
        if not text or chat_length(text) > MAX_CHAT_CHARS:
            raise UsageError(f"--say: a chat line has 1 to {MAX_CHAT_CHARS} characters")
    if args.record is not None and not args.record.parent.is_dir():
        raise UsageError(f"--record {args.record}: directory {args.record.parent} does not exist")


def _is_this_machine(host: str) -> bool:
    if host in _LOCAL_NAMES:
        return True
    try:
        if ipaddress.ip_address(host).is_loopback:
            return True
    except ValueError:
        return False
    from callbox.certs import local_addresses

    return host in local_addresses()


def resolve_ca(url: str, ca: Path | None) -> Path | None:
    """``--ca``, else the data dir's CA when the server runs on this machine, else None."""
    if ca is not None:
        if not ca.is_file():
            raise UsageError(f"--ca {ca}: no such file")
        return ca
    parts = urlsplit(url)
    if parts.scheme != "https" or not _is_this_machine(parts.hostname or ""):
        return None
    from callbox.certs import default_data_dir

    default = default_data_dir() / "ca.pem"
    return default if default.is_file() else None
