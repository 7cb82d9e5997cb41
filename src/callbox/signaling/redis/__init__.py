"""Many callbox nodes on one Redis: the store and the mailbox as Lua scripts
(docs/protocol.md, "Many nodes on one Redis")."""

from __future__ import annotations

from callbox.signaling.redis.mailbox import RedisMailbox
from callbox.signaling.redis.store import RedisStore

__all__ = ["RedisMailbox", "RedisStore"]
