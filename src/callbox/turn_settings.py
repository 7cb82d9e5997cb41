"""Settings of TURN credentials minted for coturn and of the built-in STUN server.

Part of ``callbox serve``'s settings (config.py merges the layers and calls
:func:`turn_settings`); kept apart so the TURN flags stay one block.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from callbox.errors import ConfigError

# TURN REST credentials' lifetime: the draft's (draft-uberti-behave-turn-rest) recommendation
DEFAULT_TURN_TTL = 86400
MIN_TURN_TTL = 10
# credentials cannot be revoked, only expire: a week at most
MAX_TURN_TTL = 7 * 86400


def add_turn_arguments(parser: argparse.ArgumentParser) -> None:
    """TURN credentials minted for coturn, and the built-in STUN server."""
    turn = parser.add_argument_group("TURN and STUN (calls across NATs and firewalls)")
    turn.add_argument(
        "--turn-url",
        action="append",
        metavar="URL",
        help="a coturn that shares --turn-secret, repeatable: turn:HOST:3478?transport=udp, "
        "turn:HOST:3478?transport=tcp, turns:HOST:5349; each session gets its own short-lived "
        "credentials (default none)",
    )
    secret = turn.add_mutually_exclusive_group()
    secret.add_argument(
        "--turn-secret",
        metavar="SECRET",
        help="coturn's static-auth-secret (prefer --turn-secret-file or $CALLBOX_TURN_SECRET: "
        "a flag is visible to other users in the process list)",
    )
    secret.add_argument(
        "--turn-secret-file",
        type=Path,
        metavar="FILE",
        help="read coturn's static-auth-secret from FILE (its first line)",
    )
    turn.add_argument(
        "--turn-ttl",
        type=int,
        metavar="SECONDS",
        help=f"how long minted TURN credentials stay valid (default {DEFAULT_TURN_TTL}; "
        "clients fetch fresh ones at half of it)",
    )
    turn.add_argument(
        "--stun-port",
        type=int,
        metavar="PORT",
        help="also answer STUN binding requests on this UDP port and hand clients its stun: "
        "URL (default off)",
    )
    turn.add_argument(
        "--stun-host",
        metavar="HOST",
        help="host name in that stun: URL (default: the host clients reached callbox by)",
    )


def turn_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """turn_urls, turn_secret (from the value or its file), turn_ttl, stun_port, stun_host."""
    raw_urls = values.get("turn_urls") or ()
    if isinstance(raw_urls, str) or not isinstance(raw_urls, Sequence):
        raise ConfigError("turn_urls must be a list of URLs")
    urls = tuple(parse_turn_url(str(u)) for u in raw_urls)
    secret = values.get("turn_secret")
    secret_file = values.get("turn_secret_file")
    if secret and secret_file is not None:
        raise ConfigError("--turn-secret and --turn-secret-file contradict each other: choose one")
    if secret_file is not None:
        secret = read_secret(Path(secret_file))
    secret = str(secret) if secret else None
    if urls and secret is None:
        raise ConfigError("--turn-url needs coturn's secret: --turn-secret-file FILE")
    if secret is not None and not urls:
        raise ConfigError("a TURN secret without --turn-url: give coturn's turn:HOST:PORT URLs")
    stun_port = values.get("stun_port")
    if stun_port is not None:
        stun_port = _integer(values, "stun_port", 1, 65535)
    stun_host = values.get("stun_host")
    if stun_host is not None and not _HOST_NAME.fullmatch(str(stun_host)):
        raise ConfigError(f"--stun-host {stun_host!r}: a host name or address, without a port")
    return {
        "turn_urls": urls,
        "turn_secret": secret,
        "turn_ttl": _integer(values, "turn_ttl", MIN_TURN_TTL, MAX_TURN_TTL, DEFAULT_TURN_TTL),
        "stun_port": stun_port,
        "stun_host": str(stun_host) if stun_host is not None else None,
    }


# a DNS name or an IPv4 address, or an IPv6 address in brackets
_HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]")
_TURN_URL = re.compile(
    r"(?P<scheme>turns?):(?P<host>[^:?@/\[\]]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?"
    r"(?:\?transport=(?P<transport>udp|tcp))?"
)


def parse_turn_url(url: str) -> str:
    """``turn:host[:port][?transport=udp|tcp]`` or ``turns:host[:port][?transport=tcp]``, as
    given to clients (credentials are minted per session, so none in the URL)."""
    url = url.strip()
    found = _TURN_URL.fullmatch(url)
    if "@" in url:
        raise ConfigError(
            f"--turn-url {url!r}: no credentials in the URL (they are minted from the secret)"
        )
    if found is None or not _HOST_NAME.fullmatch(found["host"]):
        raise ConfigError(
            f"--turn-url {url!r}: write turn:HOST:PORT?transport=udp|tcp or turns:HOST:PORT"
        )
    if found["port"] is not None and not 0 < int(found["port"]) <= 65535:
        raise ConfigError(f"--turn-url {url!r}: port must be 1-65535")
    if found["scheme"] == "turns" and found["transport"] == "udp":
        raise ConfigError(f"--turn-url {url!r}: turns: runs over TLS, i.e. TCP")
    return url


def read_secret(path: Path) -> str:
    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read --turn-secret-file {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--turn-secret-file {path} is not UTF-8 text") from None
    lines = text.splitlines()
    secret = lines[0].strip() if lines else ""
    if not secret:
        raise ConfigError(f"--turn-secret-file {path} is empty")
    return secret


def _integer(
    values: Mapping[str, Any], key: str, low: int, high: int, default: int | None = None
) -> int:
    raw = values.get(key, default)
    flag = "--" + key.replace("_", "-")
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{flag} must be a whole number, not {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{flag} must be {low}-{high}, not {value}")
    return value
