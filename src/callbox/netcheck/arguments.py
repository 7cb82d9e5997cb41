"""The arguments of ``callbox check``, apart from the check itself: ``callbox serve`` builds
the whole command line, and the check's ICE code (aioice, dnspython: an eighth of a server's
start-up imports) is then not loaded for a server that does not use it."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

DEFAULT_WAIT = 5.0


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 120:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 120: {text!r}")
    return value


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", metavar="URL", help="the callbox server, e.g. https://host:8443")
    parser.add_argument(
        "--ca",
        type=Path,
        help="CA certificate to trust (default: the data dir's ca.pem for a server on this "
        "machine, else the system's trust store); also trusted for turns: servers",
    )
    parser.add_argument(
        "--password",
        default=os.environ.get("CALLBOX_PASSWORD"),
        help="the server's password (default: $CALLBOX_PASSWORD)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("CALLBOX_TOKEN"),
        help="a JWT for a server started with --jwt-* (default: $CALLBOX_TOKEN)",
    )
    parser.add_argument("--room", help="the room to connect in (default: the server's, lobby)")
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_WAIT,
        metavar="S",
        help="how long to wait for each STUN/TURN server (default: %(default)s)",
    )
