"""Settings of `callbox serve`: defaults < TOML file < CALLBOX_* environment < flags."""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from callbox.errors import ConfigError

DEFAULT_HOST = "0.0.0.0"
DEFAULT_PORT = 8443
_ICE_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")


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
        raise ConfigError(f"--ice-server {url!r}: TURN needs credentials: {scheme}:USER:PASSWORD@{rest}")
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
        help="where the CA and certificates live (default $CALLBOX_DATA_DIR, else the user data dir)",
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
        help="serve plain HTTP (only behind a TLS-terminating proxy: browsers need HTTPS for cameras)",
    )
    parser.add_argument("--key", type=Path, help="private key for --cert (PEM)")


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


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("host", "port", "data_dir", "password", "cert", "key", "http", "ice_servers"):
        value = env.get(f"CALLBOX_{key.upper()}")
        if value is not None and value != "":
            out[key] = value
    if "ice_servers" in out:
        out["ice_servers"] = out["ice_servers"].split()
    if "http" in out:
        out["http"] = out["http"].lower() in ("1", "true", "yes", "on")
    return out


def serve_settings_from(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> ServerSettings:
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
    }
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
    return ServerSettings(
        host=str(values.get("host", DEFAULT_HOST)),
        port=port,
        data_dir=Path(data_dir).expanduser() if data_dir is not None else None,
        password=str(password) if password else None,
        ice_servers=tuple(parse_ice_server(str(u)) for u in raw_ice),
        cert=Path(cert) if cert is not None else None,
        key=Path(key) if key is not None else None,
        http=http,
    )
