"""The ICE servers handed to clients: what ``welcome``, the ``iceServers`` event and
``GET /config`` carry.

One place decides who gets which entry: a session (it passed the server's auth) gets every
server, credentials included; an anonymous ``GET /config`` on a server that requires auth
gets only the entries that carry no secret.

TURN credentials are minted here for a coturn started with ``use-auth-secret`` and the same
``static-auth-secret`` (the TURN REST scheme): username ``<unix expiry>:<id>``, password
``base64(HMAC-SHA1(secret, username))``. The id is the session's id (the socket.io id of its
first connection: ``[A-Za-z0-9_-]``, never a ``:``), not the user's name: names are arbitrary
Unicode a user chose (coturn would log them, and a ``:`` in one would confuse it), while the
id is the one callbox's own log lines carry as ``session=...``, so coturn's log and ours can
be read side by side. ``GET /config`` has no session: its credentials name a fresh random id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from callbox.config import IceServer, ServerSettings
from callbox.signaling import JSON

log = logging.getLogger(__name__)

_SAFE_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# the Host header's host: a DNS name or IPv4 address, or an IPv6 address in brackets
_HOST = re.compile(r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])")


@dataclass(frozen=True, slots=True)
class IceOffer:
    """ICE servers for one client, and how long their credentials stay valid."""

    servers: list[JSON]
    #: seconds until minted credentials expire; None when nothing in ``servers`` expires
    ttl: float | None = None

    def to_wire(self) -> JSON:
        return {"iceServers": self.servers, "ttl": self.ttl}


def rest_credentials(secret: str, user: str, expiry: int) -> tuple[str, str]:
    """TURN REST (coturn ``use-auth-secret``) username and password valid until ``expiry``."""
    username = f"{expiry}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def turn_user(session_id: str) -> str:
    """The id a TURN username carries: the session id when it is plain ASCII without ``:``
    (always, for socket.io ids), else a hash of it."""
    if _SAFE_ID.fullmatch(session_id):
        return session_id
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def request_host(host_header: str | None) -> str | None:
    """The host part of a ``Host`` header (``example.org:8443`` -> ``example.org``,
    ``[::1]:8443`` -> ``[::1]``), or None when it is missing or not a host name."""
    if not host_header:
        return None
    value = host_header.strip()
    if value.startswith("["):
        end = value.find("]")
        host = value[: end + 1] if end > 0 else ""
    else:
        host = value.rsplit(":", 1)[0] if value.count(":") == 1 else value
    found = _HOST.fullmatch(host)
    return found["host"].lower() if found else None


class IceServers:
    def __init__(
        self,
        settings: ServerSettings,
        on_issue: Callable[[], None] | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``on_issue`` is called once per set of TURN credentials minted (the metrics);
        ``clock`` is wall-clock time (credentials carry a unix expiry)."""
        self._static: tuple[IceServer, ...] = settings.ice_servers
        self._turn_urls = settings.turn_urls
        self._secret = settings.turn_secret
        self._ttl = settings.turn_ttl
        self._stun_port = settings.stun_port
        self._stun_host = settings.stun_host
        self._on_issue = on_issue
        self._clock = clock
        open_server = settings.password is None and not settings.jwt
        if open_server and any(s.credential is not None for s in self._static):
            log.warning(
                "static TURN credentials (--ice-server turn:USER:PASSWORD@...) are handed to "
                "anyone who can open the page: add --password or --jwt-secret, or use "
                "--turn-url with --turn-secret-file for short-lived credentials"
            )

    def for_session(self, session_id: str, host: str | None = None) -> IceOffer:
        """Everything, for a session that passed the server's auth, with TURN credentials
        minted for it. ``host``: the Host header the client reached us by (the built-in
        STUN server's URL names it)."""
        return self._offer(turn_user(session_id), host)

    def for_request(self, host: str | None = None) -> IceOffer:
        """Everything, for an HTTP request that passed the server's auth (``GET /config``)."""
        return self._offer(f"http-{secrets.token_hex(6)}", host)

    def anonymous(self, host: str | None = None) -> IceOffer:
        """For someone who has not authenticated: only entries without a secret."""
        servers = [*self._builtin_stun(host), *(s.to_wire() for s in self._static)]
        return IceOffer([s for s in servers if "credential" not in s])

    def _offer(self, user: str, host: str | None) -> IceOffer:
        servers: list[JSON] = [*self._builtin_stun(host), *(s.to_wire() for s in self._static)]
        ttl: float | None = None
        if self._turn_urls and self._secret is not None:
            now = self._clock()
            expiry = int(now) + self._ttl
            username, credential = rest_credentials(self._secret, user, expiry)
            servers.append(
                {"urls": list(self._turn_urls), "username": username, "credential": credential}
            )
            ttl = float(int(expiry - now))
            if self._on_issue is not None:
                self._on_issue()
        return IceOffer(servers, ttl)

    def _builtin_stun(self, host_header: str | None) -> list[JSON]:
        if self._stun_port is None:
            return []
        host = self._stun_host or request_host(host_header)
        if host is None:
            return []
        return [{"urls": f"stun:{host}:{self._stun_port}"}]
