"""``callbox check URL``: can calls through this server get across NATs and firewalls?

It connects like a peer (the Python peer's SignalingClient, so the password, the CA and the
signaling path are checked too; with ``--token``, a socket.io connection of its own),
takes the ICE servers the server hands to a session, and gathers from each what a browser's
ICE agent would: host candidates (this machine's addresses), srflx from STUN ("STUN works"),
relay from TURN ("TURN works"), or says why not. Exit status: 0 when TURN works or is not
configured, 1 when TURN is configured and no relay could be allocated (or the server could
not be reached at all), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from callbox.errors import ConfigError
from callbox.netcheck.probe import Finding, IceUrl, parse_ice_url, probe_stun, probe_turn


class CheckUsageError(ConfigError):
    """Bad arguments found after parsing (exit code 2)."""


@dataclass(frozen=True, slots=True)
class IceEntry:
    url: IceUrl
    username: str | None
    credential: str | None


def ice_entries(servers: Sequence[dict[str, Any]]) -> tuple[list[IceEntry], list[str]]:
    """Every URL of the RTCIceServer list, with its credentials; and the URLs not understood."""
    entries: list[IceEntry] = []
    unknown: list[str] = []
    for server in servers:
        urls = server.get("urls")
        for text in [urls] if isinstance(urls, str) else urls if isinstance(urls, list) else []:
            url = parse_ice_url(str(text))
            if url is None:
                unknown.append(str(text))
                continue
            user, cred = server.get("username"), server.get("credential")
            entries.append(IceEntry(url, str(user) if user else None, str(cred) if cred else None))
    return entries, unknown


@dataclass(frozen=True, slots=True)
class Source:
    """Where the ICE servers came from, for the first lines of the report."""

    servers: list[dict[str, Any]]
    how: str


async def from_session(
    url: str, ca: Path | None, password: str | None, room: str | None, wait: float
) -> Source:
    from callbox.peer.signaling_client import SignalingClient

    client = SignalingClient(
        url, name="callbox-check", password=password, room=room, ca=ca, connect_timeout=wait * 2
    )
    async with client:
        welcome = client.welcome
        assert welcome is not None
        servers = [dict(s) for s in welcome.ice_servers]
        how = f"signaling: connected as {welcome.user_name} in room {welcome.room}"
    return Source(servers, how)


async def from_token(
    url: str, context: ssl.SSLContext, token: str, room: str | None, wait: float
) -> Source:
    """Connect with ``auth.token`` (the SignalingClient sends passwords only) and take the
    ICE servers of the welcome."""
    import aiohttp
    import socketio

    from callbox.peer.errors import ServerRefused, ServerUnreachable
    from callbox.peer.signaling_client import say_goodbye

    welcome: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    refused: list[str] = []

    def on_welcome(data: object = None, *rest: object) -> None:
        if isinstance(data, dict) and not welcome.done():
            welcome.set_result(data)

    def on_refused(data: object = None) -> None:
        detail = data.get("data") if isinstance(data, dict) else None
        message = detail.get("message") if isinstance(detail, dict) else data
        refused.append(str(message or "connection refused"))

    auth = {"token": token, "userName": "callbox-check", **({"room": room} if room else {})}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http:
        sio = socketio.AsyncClient(
            reconnection=False, http_session=http, handle_sigint=False, logger=False
        )
        sio.on("welcome", on_welcome)
        sio.on("connect_error", on_refused)
        try:
            async with asyncio.timeout(wait * 2):
                await sio.connect(url, auth=auth, transports=["websocket"], wait_timeout=wait * 2)
                data = await welcome
        except socketio.exceptions.ConnectionError as e:
            if refused:
                raise ServerRefused("unauthorized", refused[0], "connect") from None
            raise ServerUnreachable(f"cannot connect to {url}: {e}") from None
        except TimeoutError:
            raise ServerUnreachable(f"no welcome from {url} within {wait * 2:g} s") from None
        finally:
            await say_goodbye(sio)
            await sio.shutdown()
    servers = data.get("iceServers")
    servers = [s for s in servers if isinstance(s, dict)] if isinstance(servers, list) else []
    how = f"signaling: connected with the token as {data.get('userName')} in {data.get('room')}"
    return Source(servers, how)


def _expiry_note(entries: list[IceEntry]) -> str:
    for entry in entries:
        head = (entry.username or "").split(":", 1)[0]
        if entry.url.turn and head.isdigit():
            left = int(head) - time.time()
            if left <= 0:
                return " (the TURN credentials have expired: is this machine's clock right?)"
            return f" (TURN credentials valid for {int(left)} s)"
    return ""


def _line(finding: Finding) -> str:
    found = []
    if finding.relay is not None:
        passes = " and data passes through it" if finding.relay_passes_data else ""
        found.append(f"relay {finding.relay[0]}:{finding.relay[1]} (TURN works{passes})")
        if finding.relay_passes_data is False:
            found.append(
                "but no data came back through the relay: open coturn's relay ports "
                "(min-port..max-port) in its firewall, set external-ip behind a NAT, or "
                "coturn denies this machine's address (denied-peer-ip)"
            )
    if finding.srflx is not None:
        found.append(f"srflx {finding.srflx[0]}:{finding.srflx[1]} (STUN works)")
    if finding.problem is not None:
        found.append(("no relay: " if finding.url.turn else "no srflx: ") + finding.problem)
    return f"{finding.url.text}: " + ", ".join(found)


async def gather(
    entries: list[IceEntry], wait: float, context: ssl.SSLContext | None
) -> list[Finding]:
    """Probe every URL at once (a browser gathers from all of them in parallel too)."""
    probes = [
        probe_turn(e.url, e.username, e.credential, wait, context)
        if e.url.turn
        else probe_stun(e.url, wait)
        for e in entries
    ]
    return list(await asyncio.gather(*probes))


def host_line() -> str:
    from aioice.ice import get_host_addresses

    addresses = get_host_addresses(use_ipv4=True, use_ipv6=True)
    if not addresses:
        return "host: none (only loopback: calls only within this machine)"
    return f"host: {', '.join(addresses)} (direct calls between devices on the same network)"


def verdict(findings: list[Finding]) -> tuple[int, str]:
    turn = [f for f in findings if f.url.turn]
    relays = [f for f in turn if f.relay is not None]
    stun_works = any(f.srflx is not None for f in findings)
    if turn and relays:
        return 0, (
            f"result: TURN works ({len(relays)} of {len(turn)} TURN URLs): calls get through "
            "when no direct path exists"
        )
    if turn:
        return 1, (
            "result: TURN is configured but no relay could be allocated: calls between "
            "networks that block direct paths (symmetric NATs, strict firewalls) will fail"
        )
    if stun_works:
        return 0, (
            "result: STUN works, no TURN configured: calls across most home NATs work, "
            "not across symmetric NATs or strict firewalls"
        )
    if findings:
        return 0, (
            "result: STUN does not work and no TURN is configured: only calls within one "
            "network will connect"
        )
    return 0, "result: no STUN or TURN server configured: only calls within one network connect"


async def check(args: argparse.Namespace, ca: Path | None, out: Callable[[str], None]) -> int:
    from callbox.peer.signaling_client import ssl_context

    url = args.url.rstrip("/")
    context = ssl_context(ca)
    if args.token:
        source = await from_token(url, context, args.token, args.room, args.timeout)
    else:
        source = await from_session(url, ca, args.password, args.room, args.timeout)
    entries, unknown = ice_entries(source.servers)
    out(source.how)
    out(f"ICE servers: {len(entries)} URLs{_expiry_note(entries)}")
    out(host_line())
    for text in unknown:
        out(f"{text}: not checked (not a stun:/turn: URL this check understands)")
    findings = await gather(entries, args.timeout, context)
    for finding in findings:
        out(_line(finding))
    code, summary = verdict(findings)
    out(summary)
    return code


def run_check(args: argparse.Namespace) -> int:
    from callbox.peer.usage import resolve_ca

    parts = urlsplit(args.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CheckUsageError(f"URL must be http(s)://host[:port], not {args.url!r}")
    if args.ca is not None and not args.ca.is_file():
        raise CheckUsageError(f"--ca {args.ca}: no such file")
    ca = resolve_ca(args.url, args.ca)
    return asyncio.run(check(args, ca, lambda line: print(line, flush=True)))
