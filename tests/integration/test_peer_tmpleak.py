import gc
import pytest
from tests.conftest import StartServer

@pytest.mark.parametrize("i", range(6))
async def test_start_only(start_server: StartServer, i: int) -> None:
    start_server("--password", "right")
    gc.collect()
