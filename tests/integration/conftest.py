from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import RunningServer
from tests.integration.sio_client import Clients


@pytest.fixture
async def clients(callbox_server: RunningServer) -> AsyncIterator[Clients]:
    made = Clients(callbox_server)
    yield made
    await made.close()
