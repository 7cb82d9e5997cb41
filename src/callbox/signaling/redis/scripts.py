"""The Lua scripts of the Redis store and mailbox: each protocol step is one script, so it
is atomic across every node on the same Redis. Each script is ``lua/common.lua`` followed by
its own file; redis-py runs it with EVALSHA (loading it on first use), the calls of one turn
of the event loop in one pipeline (batch.py)."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from callbox.signaling.model import ErrorCode, SignalingError, StoreUnavailable
from callbox.signaling.redis.batch import Batcher

_NAMES = (
    "add_session",
    "leave",
    "add_offer",
    "get_offer",
    "waiting",
    "route",
    "claim",
    "renegotiate",
    "remove_offer",
    "end",
    "expire",
    "m_open",
    "m_post",
    "m_detach",
    "m_resume",
    "m_expired",
    "m_drop",
    "m_ack",
    "m_cached_ack",
    "m_release",
    "beat",
)


def _source(name: str) -> str:
    return (files("callbox.signaling.redis") / "lua" / f"{name}.lua").read_text()


class Scripts:
    """Every script, registered on one client, called with the key prefix first."""

    def __init__(self, client: Redis, prefix: str) -> None:
        common = _source("common")
        self.prefix = prefix
        self.batcher = Batcher(client)
        self._scripts: dict[str, AsyncScript] = {
            name: client.register_script(common + "\n" + _source(name)) for name in _NAMES
        }

    async def run(self, name: str, *args: str | int | float) -> Any:
        """Run script ``name``; a Redis failure becomes :class:`StoreUnavailable`, a
        refusal the script returned (``E:code[|limit]:message``) a :class:`SignalingError`."""
        try:
            result = await self.batcher.run(self._scripts[name], (self.prefix, *args))
        except RedisError as e:
            raise unavailable(e) from e
        return check(result)


def unavailable(error: Exception) -> StoreUnavailable:
    return StoreUnavailable(f"signaling store unavailable ({type(error).__name__}: {error})")


def check(result: Any) -> Any:
    """A script's result, or the refusal it encodes raised as a SignalingError."""
    text = result.decode() if isinstance(result, bytes) else result
    if isinstance(text, str) and text.startswith("E:"):
        code, _, message = text[2:].partition(":")
        code, _, limit = code.partition("|")
        raise SignalingError(ErrorCode(code), message, limit=limit or None)
    return text
