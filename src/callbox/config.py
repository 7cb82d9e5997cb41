"""Settings of `callbox serve`: defaults < TOML file < CALLBOX_* environment < flags."""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from callbox.errors import ConfigError
from callbox.turn_settings import DEFAULT_TURN_TTL, TURN_FLAGS, add_turn_arguments, turn_settings

DEFAULT_HOST = "0.0.0.0"
DEFAULT_PORT = 8443
DEFAULT_OFFER_TTL = 600.0
DEFAULT_RESUME_GRACE = 30.0
# Limits an honest client never reaches: a browser sends one offer (a few KiB of SDP, at most
# 64 KiB) and trickles 10-20 candidates within a second.
DEFAULT_MAX_MESSAGE_BYTES = 128 * 1024
DEFAULT_MAX_WAITING_OFFERS = 100
DEFAULT_EVENT_RATE = 20.0
DEFAULT_EVENT_BURST = 100
DEFAULT_MAX_CONNECTIONS_PER_IP = 50
# Hardening (docs/protocol.md, "Memory and connection budgets")
DEFAULT_DRAIN_TIMEOUT = 10.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_QUEUED_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_QUEUED_BYTES_PER_IP = 8 * 1024 * 1024
DEFAULT_MAX_LOG_BYTES = 256 * 1024
DEFAULT_MAX_ROOM_OFFER_BYTES = 2 * 1024 * 1024
_ICE_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")
_N = TypeVar("_N", int, float)


@dataclass(frozen=True, slots=True)
class IceServer:
    """One RTCIceServer as handed to clients."""

    urls: str
    username: str | None = None
    credential: str | None = None

    def to_wire(self) -> dict[str, str]:
        out = {"urls": self.urls}
        if self.username is not None:
            out["username"] = self.username
        if self.credential is not None:
            out["credential"] = self.credential
        return out


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    data_dir: Path | None = None
    password: str | None = None
    ice_servers: tuple[IceServer, ...] = field(default_factory=tuple)
    cert: Path | None = None
    key: Path | None = None
    http: bool = False
    #: origins allowed on the Socket.IO endpoint besides the page's own
    allowed_origins: tuple[str, ...] = ()
    jwt_secret: str | None = None
    #: PEM text of the public key that verifies RS256/ES256 tokens
    jwt_public_key: str | None = None
    offer_ttl: float = DEFAULT_OFFER_TTL
    #: how long a session whose socket dropped mid-call is held for a resume
    resume_grace: float = DEFAULT_RESUME_GRACE
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_waiting_offers: int = DEFAULT_MAX_WAITING_OFFERS
    event_rate: float = DEFAULT_EVENT_RATE
    event_burst: int = DEFAULT_EVENT_BURST
    max_connections_per_ip: int = DEFAULT_MAX_CONNECTIONS_PER_IP
    #: proxies (CIDRs) whose X-Forwarded-For / X-Forwarded-Proto are believed
    trusted_proxies: tuple[str, ...] = ()
    #: how long a SIGTERM may take, whatever clients do
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT
    #: deadline for a TLS handshake, a request's headers and the socket.io CONNECT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES
    max_queued_bytes_per_ip: int = DEFAULT_MAX_QUEUED_BYTES_PER_IP
    max_log_bytes: int = DEFAULT_MAX_LOG_BYTES
    max_room_offer_bytes: int = DEFAULT_MAX_ROOM_OFFER_BYTES
    #: a bearer token for /metrics (scrapers); without one /metrics follows the server's auth
    metrics_token: str | None = None
    #: also walk the heap for /metrics (slow: for leak hunts, not production)
    debug_metrics: bool = False
    #: every node on this Redis is one callbox (None: one process, in memory)
    redis_url: str | None = None
    redis_prefix: str = "callbox:"
    #: this node's name among the nodes on one Redis (default: random at each start)
    node_id: str | None = None
    #: the event loop: ``auto`` (uvloop with --http where installed), ``uvloop``, ``asyncio``
    event_loop: str = "auto"
    # --- TURN credentials and the built-in STUN (server/ice.py, server/stun.py) ---
    #: turn:/turns: URLs of a coturn sharing ``turn_secret`` (TURN REST credentials)
    turn_urls: tuple[str, ...] = ()
    #: coturn's static-auth-secret; never printed (not even in this object's repr)
    turn_secret: str | None = field(default=None, repr=False)
    turn_ttl: int = DEFAULT_TURN_TTL
    #: UDP port the built-in STUN server answers on (None: off)
    stun_port: int | None = None
    #: host name in the built-in STUN's URL (None: the Host the client reached us by)
    stun_host: str | None = None

    @property
    def jwt(self) -> bool:
        return self.jwt_secret is not None or self.jwt_public_key is not None

    @property
    def scheme(self) -> str:
        return "http" if self.http else "https"


def parse_ice_server(url: str) -> IceServer:
    """``stun:host[:port]`` or ``turn:[user:password@]host[:port][?transport=udp|tcp]``."""
    url = url.strip()
    if not url.startswith(_ICE_SCHEMES):
        raise ConfigError(f"--ice-server {url!r}: must start with stun:, stuns:, turn: or turns:")
    scheme, rest = url.split(":", 1)
    if not rest or rest.startswith("/"):
        raise ConfigError(f"--ice-server {url!r}: write {scheme}:host:port (no //)")
    if "@" in rest:
        if scheme.startswith("stun"):
            raise ConfigError(f"--ice-server {url!r}: STUN servers take no credentials")
        userinfo, host = rest.rsplit("@", 1)
        user, sep, credential = userinfo.partition(":")
        if not sep or not user or not host:
            raise ConfigError(f"--ice-server {url!r}: write {scheme}:USER:PASSWORD@host:port")
        return IceServer(f"{scheme}:{host}", unquote(user), unquote(credential))
    if scheme.startswith("turn"):
        raise ConfigError(
            f"--ice-server {url!r}: TURN needs credentials: {scheme}:USER:PASSWORD@{rest}"
        )
    return IceServer(url)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML file with any of these settings")
    parser.add_argument(
        "--host", help=f"address to listen on (default {DEFAULT_HOST}: every interface)"
    )
    parser.add_argument("--port", type=int, help=f"port to listen on (default {DEFAULT_PORT})")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="where the CA and certificates live "
        "(default $CALLBOX_DATA_DIR, else the user data dir)",
    )
    parser.add_argument(
        "--password",
        help="password clients must send (default none: anyone who can reach the page may call); "
        "also $CALLBOX_PASSWORD",
    )
    parser.add_argument(
        "--ice-server",
        action="append",
        metavar="URL",
        help="STUN/TURN server for clients, repeatable: stun:HOST:PORT or "
        "turn:USER:PASSWORD@HOST:PORT (default none: enough on one LAN)",
    )
    tls = parser.add_mutually_exclusive_group()
    tls.add_argument("--cert", type=Path, help="your own certificate (PEM) instead of the local CA")
    tls.add_argument(
        "--http",
        action="store_true",
        default=None,
        help="serve plain HTTP (only behind a TLS-terminating proxy: "
        "browsers need HTTPS for cameras)",
    )
    parser.add_argument("--key", type=Path, help="private key for --cert (PEM)")
    parser.add_argument(
        "--allowed-origin",
        action="append",
        metavar="ORIGIN",
        help="also accept Socket.IO connections from pages of ORIGIN (scheme://host[:port]), "
        "repeatable (default: only the page's own origin)",
    )
    jwt = parser.add_mutually_exclusive_group()
    jwt.add_argument(
        "--jwt-secret",
        help="require an HS256 token in auth.token, signed with this secret; its sub becomes "
        "the user name, its room claim the room (default off); also $CALLBOX_JWT_SECRET",
    )
    jwt.add_argument(
        "--jwt-public-key",
        type=Path,
        metavar="FILE",
        help="require an RS256/ES256 token verified with this PEM public key (default off)",
    )
    parser.add_argument(
        "--offer-ttl",
        type=float,
        metavar="SECONDS",
        help=f"withdraw offers nobody answered after this long (default {DEFAULT_OFFER_TTL:g})",
    )
    parser.add_argument(
        "--resume-grace",
        type=float,
        metavar="SECONDS",
        help="how long a call survives its socket dropping, waiting for the client to resume "
        f"(default {DEFAULT_RESUME_GRACE:g}; 0 ends it at once)",
    )
    parser.add_argument(
        "--max-message-bytes",
        type=int,
        help=f"largest client message (default {DEFAULT_MAX_MESSAGE_BYTES})",
    )
    parser.add_argument(
        "--max-waiting-offers",
        type=int,
        help=f"waiting offers per room (default {DEFAULT_MAX_WAITING_OFFERS})",
    )
    parser.add_argument(
        "--event-rate",
        type=float,
        metavar="PER_SECOND",
        help=f"events per second per session, sustained (default {DEFAULT_EVENT_RATE:g})",
    )
    parser.add_argument(
        "--event-burst",
        type=int,
        metavar="EVENTS",
        help=f"events per session at once (default {DEFAULT_EVENT_BURST})",
    )
    parser.add_argument(
        "--max-connections-per-ip",
        type=int,
        help=f"connected sessions per client address (default {DEFAULT_MAX_CONNECTIONS_PER_IP})",
    )
    add_hardening_arguments(parser)
    add_nodes_arguments(parser)
    add_turn_arguments(parser)


def add_nodes_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis",
        metavar="URL",
        dest="redis_url",
        help="run as one of many nodes on this Redis (redis://[:password@]host:port/db; "
        "default none: one process, state in memory); also $CALLBOX_REDIS_URL",
    )
    parser.add_argument(
        "--redis-prefix",
        help="prefix of every key and channel callbox uses in Redis (default callbox:)",
    )
    parser.add_argument(
        "--node-id",
        help="this node's name among the nodes on one Redis (default: random at each start)",
    )
    parser.add_argument(
        "--event-loop",
        help="the event loop: auto (uvloop with --http where it is installed, else asyncio's), "
        "uvloop (needs --http) or asyncio (default auto)",
    )


_NODES_FLAGS = ("redis_url", "redis_prefix", "node_id", "event_loop")
EVENT_LOOPS = ("auto", "uvloop", "asyncio")


def _nodes(values: Mapping[str, Any]) -> dict[str, Any]:
    url = values.get("redis_url")
    if url and not str(url).startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"--redis {url!r}: write redis://host:port/db (or rediss://, unix://)")
    node = values.get("node_id")
    if node is not None and not valid_node_id(str(node)):
        raise ConfigError(f"--node-id {node!r}: 1-64 of A-Z a-z 0-9 _ - .")
    loop = str(values.get("event_loop") or "auto")
    if loop not in EVENT_LOOPS:
        raise ConfigError(f"--event-loop {loop!r}: choose auto, uvloop or asyncio")
    return {
        "redis_url": str(url) if url else None,
        "redis_prefix": str(values.get("redis_prefix") or "callbox:"),
        "node_id": str(node) if node else None,
        "event_loop": loop,
    }


def valid_node_id(value: str) -> bool:
    return 0 < len(value) <= 64 and all(c.isascii() and (c.isalnum() or c in "_-.") for c in value)


def add_hardening_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trusted-proxy",
        action="append",
        metavar="CIDR",
        help="a reverse proxy whose X-Forwarded-For / X-Forwarded-Proto headers are believed, "
        "repeatable (default none: the TCP peer is the client)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        metavar="SECONDS",
        help=f"on SIGTERM, stop within this long whatever clients do "
        f"(default {DEFAULT_DRAIN_TIMEOUT:g})",
    )
    parser.add_argument(
        "--connect-timeout",
        type=float,
        metavar="SECONDS",
        help="deadline for a TLS handshake, a request's headers and the socket.io CONNECT after "
        f"the engine.io handshake (default {DEFAULT_CONNECT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--max-queued-bytes",
        type=int,
        help="unsent bytes one socket may have queued before it is disconnected "
        f"(default {DEFAULT_MAX_QUEUED_BYTES})",
    )
    parser.add_argument(
        "--max-queued-bytes-per-ip",
        type=int,
        help="unsent bytes all sockets of one address may have queued "
        f"(default {DEFAULT_MAX_QUEUED_BYTES_PER_IP})",
    )
    parser.add_argument(
        "--max-log-bytes",
        type=int,
        help=f"bytes of events kept per session for a resume (default {DEFAULT_MAX_LOG_BYTES})",
    )
    parser.add_argument(
        "--max-room-offer-bytes",
        type=int,
        help="characters of waiting offers (SDP and buffered candidates) one room may hold "
        f"(default {DEFAULT_MAX_ROOM_OFFER_BYTES})",
    )
    parser.add_argument(
        "--metrics-token",
        help="bearer token that opens /metrics (default none: /metrics asks for the server's "
        "password or JWT when it has one, and is open otherwise); also $CALLBOX_METRICS_TOKEN",
    )
    parser.add_argument(
        "--debug-metrics",
        action="store_true",
        default=None,
        help="also count the Python heap's objects at every scrape (slow; for leak hunts)",
    )


_HARDENING_FLAGS = (
    "trusted_proxy",
    "drain_timeout",
    "connect_timeout",
    "max_queued_bytes",
    "max_queued_bytes_per_ip",
    "max_log_bytes",
    "max_room_offer_bytes",
    "metrics_token",
    "debug_metrics",
)


def _hardening(values: Mapping[str, Any]) -> dict[str, Any]:
    raw_proxies = values.get("trusted_proxies") or ()
    if isinstance(raw_proxies, str) or not isinstance(raw_proxies, Sequence):
        raise ConfigError("trusted_proxies must be a list of addresses or CIDRs")
    kib = 1024
    token = values.get("metrics_token")
    return {
        "trusted_proxies": tuple(parse_cidr(str(p)) for p in raw_proxies),
        "drain_timeout": _number(
            values, "drain_timeout", DEFAULT_DRAIN_TIMEOUT, float, minimum=0.5
        ),
        "connect_timeout": _number(
            values, "connect_timeout", DEFAULT_CONNECT_TIMEOUT, float, minimum=1
        ),
        "max_queued_bytes": _number(
            values, "max_queued_bytes", DEFAULT_MAX_QUEUED_BYTES, int, minimum=256 * kib
        ),
        "max_queued_bytes_per_ip": _number(
            values,
            "max_queued_bytes_per_ip",
            DEFAULT_MAX_QUEUED_BYTES_PER_IP,
            int,
            minimum=256 * kib,
        ),
        "max_log_bytes": _number(
            values, "max_log_bytes", DEFAULT_MAX_LOG_BYTES, int, minimum=16 * kib
        ),
        "max_room_offer_bytes": _number(
            values, "max_room_offer_bytes", DEFAULT_MAX_ROOM_OFFER_BYTES, int, minimum=64 * kib
        ),
        "metrics_token": str(token) if token else None,
        "debug_metrics": _flag(values.get("debug_metrics", False)),
    }


def _flag(value: object) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes", "on")
    return bool(value)


def parse_cidr(value: str) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError as e:
        raise ConfigError(f"--trusted-proxy {value!r}: not an address or CIDR") from e


def _from_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from e
    section = data.get("serve", data)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [serve] must be a table")
    return {str(k).replace("-", "_"): v for k, v in section.items()}


_SETTING_KEYS = (
    "host",
    "port",
    "data_dir",
    "password",
    "cert",
    "key",
    "http",
    "ice_servers",
    "allowed_origins",
    "jwt_secret",
    "jwt_public_key",
    "offer_ttl",
    "resume_grace",
    "max_message_bytes",
    "max_waiting_offers",
    "event_rate",
    "event_burst",
    "max_connections_per_ip",
    "trusted_proxies",
    "drain_timeout",
    "connect_timeout",
    "max_queued_bytes",
    "max_queued_bytes_per_ip",
    "max_log_bytes",
    "max_room_offer_bytes",
    "metrics_token",
    "debug_metrics",
    *_NODES_FLAGS,
    *TURN_FLAGS,
)


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in _SETTING_KEYS:
        value = env.get(f"CALLBOX_{key.upper()}")
        if value is not None and value != "":
            out[key] = value
    for key in ("ice_servers", "allowed_origins", "trusted_proxies", "turn_urls"):
        if key in out:
            out[key] = out[key].split()
    if "http" in out:
        out["http"] = _flag(out["http"])
    return out


def serve_settings_from(
    args: argparse.Namespace, env: Mapping[str, str] | None = None
) -> ServerSettings:
    """Merge the layers and validate; raises ConfigError with one readable line."""
    env = os.environ if env is None else env
    merged: dict[str, Any] = {}
    if args.config is not None:
        merged.update(_from_toml(args.config))
    merged.update(_from_env(env))
    flags = {
        "host": args.host,
        "port": args.port,
        "data_dir": args.data_dir,
        "password": args.password,
        "ice_servers": args.ice_server,
        "cert": args.cert,
        "key": args.key,
        "http": args.http,
        "allowed_origins": args.allowed_origin,
        "jwt_secret": args.jwt_secret,
        "jwt_public_key": args.jwt_public_key,
        "offer_ttl": args.offer_ttl,
        "resume_grace": args.resume_grace,
        "max_message_bytes": args.max_message_bytes,
        "max_waiting_offers": args.max_waiting_offers,
        "event_rate": args.event_rate,
        "event_burst": args.event_burst,
        "max_connections_per_ip": args.max_connections_per_ip,
        **{
            ("trusted_proxies" if f == "trusted_proxy" else f): getattr(args, f, None)
            for f in _HARDENING_FLAGS
        },
        **{f: getattr(args, f, None) for f in _NODES_FLAGS},
        **{f: getattr(args, "turn_url" if f == "turn_urls" else f, None) for f in TURN_FLAGS},
    }
    if args.turn_secret is not None or args.turn_secret_file is not None:
        merged.pop("turn_secret", None)  # a secret given as a flag replaces one from below
        merged.pop("turn_secret_file", None)
    merged.update({k: v for k, v in flags.items() if v is not None})
    unknown = set(merged) - set(flags)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    return _build(merged)


def _build(values: Mapping[str, Any]) -> ServerSettings:
    try:
        port = int(values.get("port", DEFAULT_PORT))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"port must be a number, not {values.get('port')!r}") from e
    if not 0 <= port <= 65535:
        raise ConfigError(f"port must be 0-65535, not {port}")
    cert = values.get("cert")
    key = values.get("key")
    http = bool(values.get("http", False))
    if (cert is None) != (key is None):
        raise ConfigError("--cert and --key go together: give both or neither")
    if http and cert is not None:
        raise ConfigError("--http and --cert contradict each other: choose one")
    raw_ice = values.get("ice_servers") or ()
    if isinstance(raw_ice, str) or not isinstance(raw_ice, Sequence):
        raise ConfigError("ice_servers must be a list of URLs")
    data_dir = values.get("data_dir")
    password = values.get("password")
    jwt_secret = values.get("jwt_secret")
    jwt_key_path = values.get("jwt_public_key")
    if jwt_secret and jwt_key_path is not None:
        raise ConfigError("--jwt-secret and --jwt-public-key contradict each other: choose one")
    if password and (jwt_secret or jwt_key_path is not None):
        raise ConfigError("--password and --jwt-* are alternatives: choose one")
    raw_origins = values.get("allowed_origins") or ()
    if isinstance(raw_origins, str) or not isinstance(raw_origins, Sequence):
        raise ConfigError("allowed_origins must be a list of origins")
    return ServerSettings(
        host=str(values.get("host", DEFAULT_HOST)),
        port=port,
        data_dir=Path(data_dir).expanduser() if data_dir is not None else None,
        password=str(password) if password else None,
        ice_servers=tuple(parse_ice_server(str(u)) for u in raw_ice),
        cert=Path(cert) if cert is not None else None,
        key=Path(key) if key is not None else None,
        http=http,
        allowed_origins=tuple(parse_origin(str(o)) for o in raw_origins),
        jwt_secret=str(jwt_secret) if jwt_secret else None,
        jwt_public_key=_read_public_key(Path(jwt_key_path)) if jwt_key_path is not None else None,
        offer_ttl=_number(values, "offer_ttl", DEFAULT_OFFER_TTL, float, minimum=0.1),
        resume_grace=_number(values, "resume_grace", DEFAULT_RESUME_GRACE, float, minimum=0),
        max_message_bytes=_number(
            values, "max_message_bytes", DEFAULT_MAX_MESSAGE_BYTES, int, minimum=1024
        ),
        max_waiting_offers=_number(
            values, "max_waiting_offers", DEFAULT_MAX_WAITING_OFFERS, int, minimum=1
        ),
        event_rate=_number(values, "event_rate", DEFAULT_EVENT_RATE, float, minimum=0.1),
        event_burst=_number(values, "event_burst", DEFAULT_EVENT_BURST, int, minimum=1),
        max_connections_per_ip=_number(
            values, "max_connections_per_ip", DEFAULT_MAX_CONNECTIONS_PER_IP, int, minimum=1
        ),
        **_hardening(values),
        **_nodes(values),
        **turn_settings(values),
    )


def _number(
    values: Mapping[str, Any],
    key: str,
    default: _N,
    kind: Callable[[Any], _N],
    *,
    minimum: float,
) -> _N:
    raw = values.get(key, default)
    flag = "--" + key.replace("_", "-")
    try:
        value = kind(raw)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{flag} must be a number, not {raw!r}") from e
    if not value >= minimum:  # also refuses NaN
        raise ConfigError(f"{flag} must be at least {minimum:g}, not {raw!r}")
    return value


def parse_origin(value: str) -> str:
    """``scheme://host[:port]`` as a browser sends it in the Origin header."""
    origin = value.strip().rstrip("/")
    parsed = urlsplit(origin)
    if (
        parsed.scheme not in ("http", "https")
        or not parsed.netloc
        or parsed.path
        or parsed.query
        or parsed.fragment
        or "@" in parsed.netloc
    ):
        raise ConfigError(f"--allowed-origin {value!r}: write scheme://host[:port], no path")
    return f"{parsed.scheme}://{parsed.netloc.lower()}"


def _read_public_key(path: Path) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        pem = path.expanduser().read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read --jwt-public-key {path}: {e.strerror}") from e
    try:
        key = load_pem_public_key(pem)
    except ValueError as e:
        raise ConfigError(f"--jwt-public-key {path} is not a PEM public key") from e
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise ConfigError(f"--jwt-public-key {path}: only RSA and EC keys are supported")
    return pem.decode("ascii")
