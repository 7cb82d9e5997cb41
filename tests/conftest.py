"""Shared fixtures: a real `callbox serve` process on a free port, TLS from its own CA."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.redis_server import RedisServer

STARTUP_TIMEOUT = 30.0
#: what the test servers accept on /metrics (whatever their auth), unless a test says otherwise
METRICS_TOKEN = "test-metrics-token"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class RunningServer:
    url: str
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    http: bool = False
    #: the --metrics-token it was started with (sent by get() for /metrics)
    metrics_token: str | None = None

    @property
    def ca_path(self) -> Path:
        return self.data_dir / "ca.pem"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_path))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(
        self, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, dict[str, str]]:
        context = None if self.http else self.ssl_context()
        request = urllib.request.Request(self.url + path, headers=headers or {})
        if path.startswith("/metrics") and self.metrics_token and headers is None:
            request.add_header("Authorization", f"Bearer {self.metrics_token}")
        with urllib.request.urlopen(request, context=context, timeout=5) as r:
            return r.status, r.read(), dict(r.headers)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


class PortTaken(RuntimeError):
    """The free port picked for a server was taken by another process before it bound it
    (another test worker's, on a busy machine): start again on another."""


def _wait_ready(server: RunningServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            log = server.log()
            why = PortTaken if "address already in use" in log else RuntimeError
            raise why(f"callbox serve exited early:\n{log}")
        try:
            status, _, _ = server.get("/healthz")
            if status == 200:
                return
        except Exception as e:  # not listening yet
            last = e
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"callbox serve not ready in {STARTUP_TIMEOUT}s ({last}):\n{server.log()}")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the whole session; tests keep apart by key prefix (or by nodes
    of their own on a fresh database)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def shared_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data dir (one CA) for the session's servers: the CA is made once, like a user's."""
    return tmp_path_factory.mktemp("callbox-data")


StartServer = Callable[..., RunningServer]


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    """Where the servers of a test keep their state: in memory (one process) or on a real
    redis-server (one node of many). Every server test runs on both; tests/e2e runs on
    memory only, plus its own tests across two nodes."""
    return str(request.param)


@pytest.fixture
def backend_args(backend: str, request: pytest.FixtureRequest) -> tuple[str, ...]:
    if backend == "memory":
        return ()
    redis: RedisServer = request.getfixturevalue("redis_server")
    return ("--redis", redis.url, "--redis-prefix", f"t{uuid.uuid4().hex[:12]}:")


@pytest.fixture
def start_server(
    shared_data_dir: Path, tmp_path_factory: pytest.TempPathFactory, backend_args: tuple[str, ...]
) -> Iterator[StartServer]:
    """Factory: start `callbox serve` with extra arguments; all are stopped after the test.
    Servers of one test share its backend (and, on Redis, its key prefix: they are nodes of
    one callbox)."""
    started: list[RunningServer] = []

    def start(
        *extra: str,
        data_dir: Path | None = None,
        metrics_token: str | None = METRICS_TOKEN,
        port: int | None = None,
    ) -> RunningServer:
        """``port``: a given one (e.g. the port of a server that was just stopped)."""
        for attempt in range(3):
            try:
                return _start(extra, data_dir, metrics_token, port or free_port())
            except PortTaken:
                if port is not None or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _start(
        extra: tuple[str, ...], data_dir: Path | None, metrics_token: str | None, port: int
    ) -> RunningServer:
        data = data_dir or shared_data_dir
        log_path = tmp_path_factory.mktemp("serve-log") / "serve.log"
        http = "--http" in extra
        argv = [sys.executable, "-m", "callbox", "-v", "serve", "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--data-dir", str(data), *backend_args, *extra]
        if metrics_token is not None:
            argv += ["--metrics-token", metrics_token]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("CALLBOX_PASSWORD", None)
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env=env)
        scheme = "http" if http else "https"
        server = RunningServer(
            f"{scheme}://127.0.0.1:{port}", port, data, process, log_path, http, metrics_token
        )
        started.append(server)
        _wait_ready(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def callbox_server(start_server: StartServer) -> RunningServer:
    """A running `callbox serve` (HTTPS with the generated CA, no password)."""
    return start_server()
