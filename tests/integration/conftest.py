from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.conftest import RunningServer
from tests.integration.sio_client import Clients, own_address, own_room
from tests.redis_server import RedisServer


@pytest.fixture
async def clients(callbox_server: RunningServer) -> AsyncIterator[Clients]:
    """Clients on a server of this test alone, in the default room, from 127.0.0.1."""
    made = Clients(callbox_server)
    yield made
    await made.close()


@pytest.fixture
async def shared_clients(shared_server: RunningServer) -> AsyncIterator[Clients]:
    """Clients on the worker's shared server, in a room of this test (unless a client names
    one) and from a loopback address of this test: what they do is not seen by another test
    (see ``shared_server``)."""
    made = Clients(shared_server, source=own_address(), room=own_room())
    yield made
    await made.close()


@pytest.fixture
def room() -> str:
    """A room of this test alone, for peers on the shared server (``shared_server``)."""
    return own_room()


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A client of the session's redis-server (tests keep apart by key prefix)."""
    redis = Redis.from_url(redis_server.url)
    yield redis
    await redis.aclose()
