"""The ICE servers handed to clients: what ``welcome``, the ``iceServers`` event and
``GET /config`` carry.

One place decides who gets which entry: a session (it passed the server's auth) gets every
server, credentials included; an anonymous ``GET /config`` on a server that requires auth
gets only the entries that carry no secret.
"""

from __future__ import annotations

from dataclasses import dataclass

from callbox.config import IceServer, ServerSettings
from callbox.signaling import JSON


@dataclass(frozen=True, slots=True)
class IceOffer:
    """ICE servers for one client, and how long their credentials stay valid."""

    servers: list[JSON]
    #: seconds until minted credentials expire; None when nothing in ``servers`` expires
    ttl: float | None = None

    def to_wire(self) -> JSON:
        return {"iceServers": self.servers, "ttl": self.ttl}


class IceServers:
    def __init__(self, settings: ServerSettings) -> None:
        self._static: tuple[IceServer, ...] = settings.ice_servers

    def for_user(self, user_name: str) -> IceOffer:
        """Everything, for a client that passed the server's auth (minted credentials name
        ``user_name``)."""
        return IceOffer([s.to_wire() for s in self._static])

    def anonymous(self) -> IceOffer:
        """For someone who has not authenticated: only entries without a secret."""
        return IceOffer([s.to_wire() for s in self._static if s.credential is None])
