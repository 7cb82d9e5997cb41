"""RedisMailbox: the :class:`~callbox.signaling.mailbox.Mailbox` protocol on the Redis every
node shares, so a client resumes on any node. Each method is one Lua script.

Posting a letter for a session whose socket is on another node also publishes it on that
node's channel, in the same script (``<prefix>to:<node>``, message ``"<sid> <numbered 0|1>
<letter>"``); pub/sub is at-most-once, so the letter is kept in the session's log as well and
a node that missed it reads it from there (:meth:`read`).

Keys: ``m:<sid>`` the box (where its socket is, numbering, hold deadline, saved rate, ack
high-water), ``ml:<sid>`` the log (``<size> [seq,"event",payload]``: the size the poster
weighed it at, which trimming gives back), ``ma:<sid>`` /
``mq:<sid>`` the ack cache and its order, ``tok:<hash>`` resume tokens (hashed),
``holds`` held sessions by deadline, ``heldfrom:<address>``, ``node:<node>`` the sessions whose
socket is on a node.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from callbox.jsontext import dumps, loads
from callbox.signaling.mailbox import (
    At,
    Letter,
    MailboxLimits,
    Posted,
    RateState,
    Ticket,
    new_token,
    token_key,
)
from callbox.signaling.redis.scripts import Scripts, unavailable

#: seconds a box lives without being written
BOX_TTL = 24 * 3600


def body_of(event: str, payload: object) -> str:
    """The letter's text after its number: ``"event",payload`` as JSON."""
    return dumps([event, payload])[1:-1]


def posted_from(result: str) -> Posted | None:
    """Where ``post_letter`` (lua/common.lua) put a letter: ``'seq node socket numbered'``,
    ``''`` when the session's mailbox is gone."""
    if not result:
        return None
    seq, node, sid, numbered = result.split(" ")
    return Posted(int(seq), At(node, sid) if node else None, numbered == "1")


def letter_from(text: str) -> Letter:
    seq, event, payload = loads(text)
    return Letter(int(seq), str(event), payload, len(text))


def _decode(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisMailbox:
    def __init__(
        self,
        client: Redis,
        prefix: str = "callbox:",
        limits: MailboxLimits | None = None,
        *,
        grace: float = 30.0,
        node: str = "",
        scripts_client: Redis | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.limits = limits or MailboxLimits()
        self.grace = grace
        #: the node posting (letters for its own sockets are not published)
        self.node = node
        #: the scripts may run on a client of their own (its pool tuned for them)
        self.scripts = Scripts(scripts_client or client, prefix)

    async def open(
        self,
        session_id: str,
        at: At,
        *,
        resumable: bool,
        address: str,
        identity: str | None,
        room: str = "",
    ) -> str | None:
        token = new_token() if resumable else None
        await self.scripts.run(
            "m_open",
            session_id,
            at.node,
            at.sid,
            "1" if resumable else "0",
            address,
            identity or "",
            room,
            token_key(token) if token else "",
            BOX_TTL,
        )
        return token

    async def post(self, session_id: str, event: str, payload: object, size: int) -> Posted | None:
        limits = self.limits
        result = await self.scripts.run(
            "m_post",
            session_id,
            body_of(event, payload),
            size,
            self.node,
            limits.log_entries,
            limits.log_bytes,
            BOX_TTL,
        )
        return posted_from(result)

    async def read(self, session_id: str, after: int) -> list[Letter]:
        try:
            raw = await self.client.lrange(f"{self.prefix}ml:{session_id}", 0, -1)
        except RedisError as e:
            raise unavailable(e) from e
        letters = [letter_from(_decode(t).split(" ", 1)[1]) for t in raw]  # "<size> <letter>"
        return [x for x in letters if x.seq > after]

    async def detach(
        self, session_id: str, at: At, *, hold_until: float | None, rate: RateState | None
    ) -> bool:
        result = await self.scripts.run(
            "m_detach",
            session_id,
            at.node,
            at.sid,
            "" if hold_until is None else repr(hold_until),
            "" if rate is None else f"{rate[0]!r} {rate[1]!r}",
            int(self.grace) + 60,
        )
        return int(result) == 1

    async def resume(
        self,
        token: str,
        at: At,
        last_seq: int | None,
        *,
        identity: str | None = None,
        room: str | None = None,
    ) -> Ticket:
        fresh = new_token()
        raw = loads(
            await self.scripts.run(
                "m_resume",
                token_key(token),
                at.node,
                at.sid,
                "" if last_seq is None else last_seq,
                identity or "",
                room or "",
                token_key(fresh),
                BOX_TTL,
            )
        )
        replaced = raw.get("replaced")
        rate_text = raw.get("rate") or ""
        rate: RateState | None = None
        if rate_text:
            tokens, when = rate_text.split(" ")
            rate = (float(tokens), float(when))
        letters = raw.get("letters")
        return Ticket(
            session_id=raw["sid"],
            token=fresh,
            letters=[letter_from(t) for t in letters] if isinstance(letters, list) else [],
            next_seq=int(raw["next"]),
            lost=bool(raw["lost"]),
            replaced=At(replaced[0], replaced[1]) if isinstance(replaced, list) else None,
            rate=rate,
            identity=raw.get("identity") or None,
            address=raw.get("address", ""),
            ack_highest=int(raw.get("ahigh") or 0),
        )

    async def expired(self, now: float) -> list[str]:
        return [_decode(s) for s in await self.scripts.run("m_expired", repr(now))]

    async def drop(self, session_id: str) -> None:
        await self.scripts.run("m_drop", session_id)

    async def cached_ack(self, session_id: str, seq: int) -> tuple[bool, object]:
        result = await self.scripts.run("m_cached_ack", session_id, seq)
        if not result:
            return False, None
        if result.startswith("ack:"):
            return True, loads(result[4:])
        message = f"message #{seq} was handled already"
        return True, {"error": {"code": "invalid_payload", "message": message}}

    async def remember_ack(self, session_id: str, seq: int, ack: object, size: int) -> None:
        limits = self.limits
        await self.scripts.run(
            "m_ack",
            session_id,
            seq,
            dumps(ack),
            size,
            limits.ack_entries,
            limits.ack_bytes,
            BOX_TTL,
        )

    async def held_from(self, address: str) -> int:
        try:
            value = await self.client.get(f"{self.prefix}heldfrom:{address}")
        except RedisError as e:
            raise unavailable(e) from e
        return int(value or 0)

    async def sessions_on(self, node: str) -> list[str]:
        try:
            members = await self.client.smembers(f"{self.prefix}node:{node}")
        except RedisError as e:
            raise unavailable(e) from e
        return sorted(_decode(m) for m in members)

    async def release(self, session_id: str, node: str, *, hold_until: float) -> str:
        result = await self.scripts.run(
            "m_release", session_id, node, repr(hold_until), int(self.grace) + 60
        )
        return str(result)

    async def held_count(self) -> int:
        try:
            return int(await self.client.zcard(f"{self.prefix}holds"))
        except RedisError as e:
            raise unavailable(e) from e

    async def close(self) -> None:
        """The client is shared with the store and the bus: the app closes it."""
