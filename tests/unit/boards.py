"""Drive a Switchboard by socket sid, the way the transport does: the transport keeps each
socket's Session from the connect and passes it in; this adapter looks it up in the store."""

from __future__ import annotations

from callbox.signaling import (
    JSON,
    Auth,
    Delivery,
    ErrorCode,
    Outcome,
    Session,
    SignalingError,
    Switchboard,
)
from callbox.signaling.store import Store


class BySid:
    """``board.new_offer("a", payload)`` -> ``switchboard.new_offer(<session a>, payload)``."""

    def __init__(self, switchboard: Switchboard) -> None:
        self.switchboard = switchboard
        self.store: Store = switchboard.store

    async def _session(self, sid: str) -> Session:
        session = await self.store.get_session(sid)
        if session is None:
            raise SignalingError(ErrorCode.UNAUTHORIZED, "this connection has no session")
        return session

    async def join(self, sid: str, auth: Auth) -> tuple[Session, list[JSON]]:
        return await self.switchboard.join(sid, auth)

    async def leave(self, sid: str, reason: str = "peer-disconnected") -> list[Delivery]:
        return await self.switchboard.leave(sid, reason)

    async def waiting_views(self, session: Session) -> list[JSON]:
        return await self.switchboard.waiting_views(session)

    async def expire_offers(self, ttl: float) -> list[Delivery]:
        return await self.switchboard.expire_offers(ttl)

    async def new_offer(self, sid: str, data: object = None) -> Outcome:
        return await self.switchboard.new_offer(await self._session(sid), data)

    async def ice_candidate(self, sid: str, data: object = None) -> Outcome:
        return await self.switchboard.ice_candidate(await self._session(sid), data)

    async def answer(self, sid: str, data: object = None) -> Outcome:
        return await self.switchboard.answer(await self._session(sid), data)

    async def hangup(self, sid: str, data: object = None) -> Outcome:
        return await self.switchboard.hangup(await self._session(sid), data)

    async def renegotiate(self, sid: str, data: object = None) -> Outcome:
        return await self.switchboard.renegotiate(await self._session(sid), data)

    async def decline(self, sid: str, data: object = None) -> Outcome:
        return await self.switchboard.decline(await self._session(sid), data)
