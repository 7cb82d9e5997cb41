"""A real `callbox serve --log-format json`: every log line is one JSON object with ids, and
no secret in any of them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import socketio

from tests.conftest import RunningServer, _wait_ready, free_port
from tests.integration.sio_client import OFFER, Client

PASSWORD = "pass-" + "p" * 12
SECRET = "turn-" + "s" * 20


@pytest.fixture
def json_server(tmp_path: Path) -> Iterator[RunningServer]:
    """`callbox -vv --log-format json serve` with a password and a TURN secret; its stderr
    alone goes to the log file."""
    (tmp_path / "secret").write_text(SECRET)
    port = free_port()
    argv = [sys.executable, "-m", "callbox", "-vv", "--log-format", "json", "serve"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--data-dir", str(tmp_path)]
    argv += ["--password", PASSWORD, "--turn-url", "turn:192.0.2.1:3478"]
    argv += ["--turn-secret-file", str(tmp_path / "secret")]
    log_path = tmp_path / "stderr.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as err:
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env)
    server = RunningServer(f"https://127.0.0.1:{port}", port, tmp_path, process, log_path)
    try:
        _wait_ready(server)
        yield server
    finally:
        server.stop()


async def test_serve_logs_json_lines_with_ids_and_no_secrets(json_server: RunningServer) -> None:
    client = Client(json_server)
    await client.connect(password=PASSWORD, userName="alice")
    await client.call("newOffer", OFFER)
    await client.call("iceServers", {})
    await client.close()
    with pytest.raises(socketio.exceptions.ConnectionError):  # logged as refused
        await Client(json_server).connect(password="wrong-password")
    await asyncio.sleep(0.5)
    await asyncio.to_thread(json_server.stop)
    text = json_server.log()
    assert PASSWORD not in text and SECRET not in text
    records = [json.loads(line) for line in text.splitlines()]  # every line is JSON
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    joined = [r for r in records if "joined" in str(r["message"])]
    assert joined and joined[0]["sid"] and joined[0]["room"] == "lobby", joined
    assert any(r["level"] == "WARNING" and "refused" in str(r["message"]) for r in records)
