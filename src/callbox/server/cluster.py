"""One callbox of many nodes on one Redis (``--redis URL``): the shared store and mailbox,
the bus between the nodes, and their heartbeats. Without ``--redis`` none of this exists."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from callbox.config import ServerSettings
from callbox.server.bus import RedisBus
from callbox.server.lifecycle import Hub, Lifecycle
from callbox.server.nodes import Nodes
from callbox.signaling.mailbox import MailboxLimits
from callbox.signaling.redis import RedisMailbox, RedisStore

log = logging.getLogger(__name__)

POOL_SIZE = 64
#: how long a command may wait for a free connection (a busy node, not an outage)
POOL_WAIT = 20


@dataclass
class Cluster:
    client: Redis
    #: the bus's subscription: its own connection, never retried in place (see connect)
    subscriber: Redis
    #: what the scripts run on (see connect)
    scripts: Redis
    store: RedisStore
    mailbox: RedisMailbox
    bus: RedisBus | None = field(default=None)
    nodes: Nodes | None = field(default=None)

    @classmethod
    def connect(cls, settings: ServerSettings, node: str) -> Cluster:
        """Clients and scripts; nothing is sent to Redis until :meth:`start`."""
        url = settings.redis_url or ""
        client = Redis(connection_pool=_pool(url, socket_timeout=5))
        # the scripts' own pool, without redis-py's per-read timeout (an asyncio timer set up
        # for every reply, ~0.6 ms of a handshake's CPU in bench/): each batch of them has
        # one deadline instead (batch.py)
        scripts = Redis(connection_pool=_pool(url, socket_timeout=None))
        # a subscription that breaks must fail loudly: the bus then resubscribes and catches
        # every session up from its log. Retried in place, redis-py would resubscribe
        # silently and what was published in the gap would be lost.
        subscriber = Redis.from_url(
            url, socket_connect_timeout=2, health_check_interval=10, retry=Retry(NoBackoff(), 0)
        )
        prefix = settings.redis_prefix
        limits = MailboxLimits(log_bytes=settings.max_log_bytes)
        mailbox = RedisMailbox(
            client, prefix, limits, grace=settings.resume_grace, node=node, scripts_client=scripts
        )
        store = RedisStore(client, prefix, mailbox=mailbox)
        return cls(client, subscriber, scripts, store, mailbox)

    def attach(self, hub: Hub, lifecycle: Lifecycle) -> None:
        prefix = self.store.prefix
        self.bus = RedisBus(
            self.client, prefix, hub.node, hub.router, hub.sessions, hub.switchboard,
            batcher=self.mailbox.scripts.batcher, subscriber=self.subscriber,
        )  # fmt: skip
        hub.router.bus = self.bus
        self.nodes = Nodes(self.client, self.mailbox.scripts, prefix, hub, lifecycle.finish)

    async def start(self) -> None:
        if self.bus is not None:
            self.bus.start()
        if self.nodes is not None:
            try:
                await self.nodes.start()
            except Exception as e:  # Redis down at start: the loop retries
                log.warning("Redis unreachable at start (%s): retrying", e)
                self.nodes.reachable = False
                await self.nodes.start_loop()

    async def close(self) -> None:
        if self.nodes is not None:
            await self.nodes.close()
        if self.bus is not None:
            await self.bus.close()
        await self.client.aclose()
        await self.scripts.aclose()
        await self.subscriber.aclose()


def _pool(url: str, socket_timeout: float | None) -> BlockingConnectionPool:
    # bounded, and callers wait on it: a burst of connects must not open a Redis
    # connection each
    return BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_SIZE,
        timeout=POOL_WAIT,
        socket_connect_timeout=2,
        socket_timeout=socket_timeout,
        health_check_interval=10,
        # a connection Redis closed (it restarted) is found dead on its next command:
        # retried on a fresh connection rather than failing that command
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
