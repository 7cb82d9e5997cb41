"""The `callbox` command: serve | cert ca | cert create | cert install | call | answer | check.

The only module (with the peer's command layer) that prints or configures logging. Every
CallboxError becomes one line on stderr: exit 2 for usage, 1 for runtime; tracebacks only
with -vv.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

from callbox import __version__
from callbox.config import ServerSettings, add_serve_arguments, serve_settings_from
from callbox.errors import CallboxError, CANotFound, ConfigError
from callbox.logs import FORMATS, setup_logging

log = logging.getLogger("callbox")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callbox",
        description="Self-hosted WebRTC calls: HTTPS, signaling and a web client in one command.",
    )
    parser.add_argument("--version", action="version", version=f"callbox {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="-v for info, -vv for debug"
    )
    parser.add_argument(
        "--log-format",
        choices=FORMATS,
        default=os.environ.get("CALLBOX_LOG_FORMAT") or "text",
        help="log lines as text or as one JSON object per line (default: text, or "
        "$CALLBOX_LOG_FORMAT)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve",
        help="serve the web client and signaling over HTTPS",
        description="Serve the web client and the signaling server over HTTPS. "
        "Every setting also reads CALLBOX_<NAME> from the environment.",
    )
    add_serve_arguments(serve)
    serve.add_argument(  # also here: `callbox serve --log-format json` reads naturally
        "--log-format", choices=FORMATS, default=argparse.SUPPRESS, help="as callbox --log-format"
    )

    cert = commands.add_parser("cert", help="the local certificate authority (like mkcert)")
    cert_commands = cert.add_subparsers(dest="cert_command", metavar="ACTION", required=True)
    for name, help_text in (
        ("ca", "create the local CA (once; --force replaces it)"),
        ("create", "create a certificate for HOST... signed by the local CA"),
        ("install", "trust the local CA in this machine's system and browser stores"),
    ):
        sub = cert_commands.add_parser(name, help=help_text)
        sub.add_argument(
            "--data-dir", type=Path, help="where the CA lives (default: user data dir)"
        )
        if name == "ca":
            sub.add_argument("--force", action="store_true", help="replace an existing CA")
        if name == "create":
            sub.add_argument("hosts", nargs="+", metavar="HOST", help="names and addresses")
            sub.add_argument("--cert-file", type=Path, help="output certificate (default data dir)")
            sub.add_argument("--key-file", type=Path, help="output key (default data dir)")

    from callbox.peer import arguments as peer_arguments

    call = commands.add_parser("call", help="place a call from Python (aiortc)")
    peer_arguments.add_call_arguments(call)
    answer = commands.add_parser("answer", help="answer a waiting call from Python (aiortc)")
    peer_arguments.add_answer_arguments(answer)

    from callbox.netcheck import arguments as check_arguments

    check = commands.add_parser(
        "check",
        help="check that calls through a server can cross NATs (STUN) and firewalls (TURN)",
        description="Connect to a callbox server like a peer and gather candidates with each "
        "of its ICE servers: host, srflx (STUN works), relay (TURN works), or why not. "
        "Exits 1 when TURN is configured but no relay could be allocated.",
    )
    check_arguments.add_check_arguments(check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.log_format not in FORMATS:  # from the environment
        parser.error(f"CALLBOX_LOG_FORMAT must be one of {', '.join(FORMATS)}")
    secrets = setup_logging(args.verbose, args.log_format)
    secrets.add(getattr(args, "password", None), getattr(args, "jwt_secret", None))
    secrets.add(getattr(args, "turn_secret", None), getattr(args, "token", None))
    try:
        if args.command == "serve":
            settings = serve_settings_from(args)
            secrets.add(settings.password, settings.jwt_secret, settings.turn_secret)
            secrets.add(settings.metrics_token, _url_password(settings.redis_url))
            return _serve(settings)
        if args.command == "cert":
            return _cert(args)
        if args.command == "check":
            from callbox.netcheck.command import run_check

            return run_check(args)
        from callbox.peer.usage import check_arguments

        check_arguments(args)  # before the peer's media stack is imported: bad input fails fast
        from callbox.peer import command as peer_command

        if args.command == "call":
            return peer_command.run_call(args)
        return peer_command.run_answer(args)
    except ConfigError as e:
        if args.verbose >= 2:
            log.exception("configuration error")
        print(f"callbox: error: {e}", file=sys.stderr)
        return 2
    except CallboxError as e:
        if args.verbose >= 2:
            log.exception("failed")
        print(f"callbox: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def _url_password(url: str | None) -> str | None:
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(url).password if url else None
    except ValueError:
        return None
    return unquote(password) if password else None


def _data_dir(value: Path | None) -> Path:
    from callbox.certs import default_data_dir

    return value.expanduser() if value is not None else default_data_dir()


def _serve(settings: ServerSettings) -> int:
    from callbox.certs import local_addresses
    from callbox.server.banner import format_banner
    from callbox.server.runner import Listening, loop_factory, serve, tls_context

    new_loop = loop_factory(settings.event_loop, tls=not settings.http)
    context: ssl.SSLContext | None = None
    ca_path: Path | None = None
    if settings.cert is not None and settings.key is not None:
        context = tls_context(settings.cert, settings.key)
    elif not settings.http:
        from callbox.certs import ensure_server_cert

        server_cert = ensure_server_cert(_data_dir(settings.data_dir))
        if server_cert.created_ca:
            print(f"Created a local CA: {server_cert.ca_path}")
        if server_cert.renewed_leaf:
            names = ", ".join(server_cert.names)
            print(f"Created a certificate for {names} (expires {server_cert.not_after:%Y-%m-%d})")
        context = tls_context(server_cert.cert_path, server_cert.key_path)
        ca_path = server_cert.ca_path

    def ready(listening: Listening) -> None:
        banner = format_banner(
            listening, local_addresses(), ca_path, password=settings.password is not None
        )
        print(banner, flush=True)

    with asyncio.Runner(loop_factory=new_loop) as runner:
        runner.run(serve(settings, context, ready, ca_path=ca_path))
    print("callbox stopped.")
    return 0


def _cert(args: argparse.Namespace) -> int:
    from callbox import certs

    data_dir = _data_dir(args.data_dir)
    if args.cert_command == "ca":
        ca = certs.create_ca(data_dir, force=args.force)
        print(f"Created a new local CA: {ca.subject}")
        print(f"  certificate: {ca.cert_path}")
        print(f"  key:         {ca.key_path} (keep it private: it can sign for any name)")
        print(f"  expires:     {ca.not_after:%Y-%m-%d}")
        print("Run `callbox cert install` to trust it on this machine.")
        return 0
    if args.cert_command == "create":
        leaf = certs.create_leaf(
            data_dir, args.hosts, cert_path=args.cert_file, key_path=args.key_file
        )
        print("Created a certificate valid for:")
        for name in leaf.names:
            print(f"  - {name}")
        print(f"  certificate: {leaf.cert_path}")
        print(f"  key:         {leaf.key_path}")
        print(f"  expires:     {leaf.not_after:%Y-%m-%d}")
        return 0
    paths = certs.CertPaths.in_dir(data_dir)
    if not paths.ca_cert.is_file():
        raise CANotFound(f"no CA in {data_dir}: run `callbox cert ca` or `callbox serve` first")
    failed = 0
    for result in certs.install_ca(paths.ca_cert):
        mark = "ok" if result.ok else "not done"
        print(f"{result.store}: {mark}: {result.message}")
        failed += not result.ok
    return 0 if failed == 0 else 1
