"""The arguments of ``callbox call`` and ``callbox answer``, in a module of their own: the CLI
builds its parser on every run, ``callbox serve`` included, and this module imports nothing of
aiortc (the peer's modules cost ~0.7 s of CPU to import, at every server start).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {text!r}")
    return value


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", metavar="URL", help="the callbox server, e.g. https://host:8443")
    parser.add_argument("--name", help="your display name (default: one the server picks)")
    parser.add_argument("--room", help="the room to call in (default: the server's, lobby)")
    parser.add_argument(
        "--password",
        default=os.environ.get("CALLBOX_PASSWORD"),
        help="the server's password (default: $CALLBOX_PASSWORD)",
    )
    parser.add_argument(
        "--ca",
        type=Path,
        help="CA certificate to trust (default: the data dir's ca.pem for a server on this "
        "machine, else the system's trust store)",
    )
    parser.add_argument(
        "--send",
        default="testsrc",
        metavar="testsrc|FILE|DEVICE|none",
        help="what to send: a generated test pattern and tone, a media file, a V4L2 device "
        "(/dev/video0), an ALSA device (alsa:hw:0) or nothing (default: %(default)s)",
    )
    parser.add_argument(
        "--record", type=Path, metavar="FILE", help="record what you receive (.mp4, .mkv)"
    )
    parser.add_argument(
        "--duration",
        type=_seconds,
        metavar="S",
        help="hang up after S seconds of call (default: until the other side hangs up)",
    )
    parser.add_argument(
        "--say",
        action="append",
        default=[],
        metavar="TEXT",
        help="send TEXT as a chat line once the call's data channel is open (repeatable); "
        "chat lines from the other side are printed as 'NAME: text'",
    )
    parser.add_argument(
        "--relay-only",
        action="store_true",
        help="send media only through the server's TURN relays (to test them)",
    )
    parser.add_argument(
        "--connect-timeout",
        type=_seconds,
        default=20.0,
        metavar="S",
        help="give up if media does not connect within S seconds (default: %(default)s)",
    )


def add_call_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``callbox call``."""
    _add_common(parser)
    parser.add_argument(
        "--wait",
        type=_seconds,
        default=60.0,
        metavar="S",
        help="give up if nobody answers within S seconds (default: %(default)s)",
    )


def add_answer_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``callbox answer``."""
    _add_common(parser)
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--from", dest="from_user", metavar="NAME", help="answer only NAME's offer")
    who.add_argument(
        "--first", action="store_true", help="answer the first waiting offer (the default)"
    )
    parser.add_argument(
        "--wait",
        type=_seconds,
        default=60.0,
        metavar="S",
        help="give up if no matching offer arrives within S seconds (default: %(default)s)",
    )
