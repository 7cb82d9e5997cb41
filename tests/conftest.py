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

# A server starts in 1.5 s on a quiet machine (1.3 s of CPU, nearly all imports); in the
# suite, four workers with Chromium on two cores, starts of 15 s were seen, and three failed
# at 30 s in one run on a slow host. Only a server that never comes up waits this long.
STARTUP_TIMEOUT = 60.0
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


#: for a test whose code under test never reaches the backend (the CLI refuses its arguments
#: before connecting, or TLS fails before socket.io): one run on memory says all a run on Redis
#: would
BACKEND_FREE = pytest.mark.parametrize("backend", ["memory"])


@pytest.fixture
def backend_args(backend: str, request: pytest.FixtureRequest) -> tuple[str, ...]:
    if backend == "memory":
        return ()
    redis: RedisServer = request.getfixturevalue("redis_server")
    return ("--redis", redis.url, "--redis-prefix", f"t{uuid.uuid4().hex[:12]}:")


def launch(
    extra: tuple[str, ...],
    *,
    data_dir: Path,
    log_path: Path,
    backend_args: tuple[str, ...] = (),
    metrics_token: str | None = METRICS_TOKEN,
    port: int | None = None,
    started: list[RunningServer] | None = None,
) -> RunningServer:
    """Start `callbox serve` and wait until it answers /healthz. ``port``: a given one (e.g.
    the port of a server that was just stopped); else a free one, tried again (at most 3 times)
    if another process took it first. ``started`` collects each server, ready or not."""
    for attempt in range(3):
        try:
            return _launch(
                extra, data_dir, log_path, backend_args, metrics_token, port or free_port(), started
            )
        except PortTaken:
            if port is not None or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _launch(
    extra: tuple[str, ...],
    data_dir: Path,
    log_path: Path,
    backend_args: tuple[str, ...],
    metrics_token: str | None,
    port: int,
    started: list[RunningServer] | None,
) -> RunningServer:
    http = "--http" in extra
    argv = [sys.executable, "-m", "callbox", "-v", "serve", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--data-dir", str(data_dir), *backend_args, *extra]
    if metrics_token is not None:
        argv += ["--metrics-token", metrics_token]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("CALLBOX_PASSWORD", None)
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    scheme = "http" if http else "https"
    server = RunningServer(
        f"{scheme}://127.0.0.1:{port}", port, data_dir, process, log_path, http, metrics_token
    )
    if started is not None:
        started.append(server)
    _wait_ready(server)
    return server


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
        return launch(
            extra,
            data_dir=data_dir or shared_data_dir,
            log_path=tmp_path_factory.mktemp("serve-log") / "serve.log",
            backend_args=backend_args,
            metrics_token=metrics_token,
            port=port,
            started=started,
        )

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def callbox_server(start_server: StartServer) -> RunningServer:
    """A running `callbox serve` of this test alone (HTTPS with the generated CA, no
    password)."""
    return start_server()


def _serve_shared(
    shared_data_dir: Path, tmp_path_factory: pytest.TempPathFactory, backend_args: tuple[str, ...]
) -> Iterator[RunningServer]:
    server = launch(
        (),
        data_dir=shared_data_dir,
        log_path=tmp_path_factory.mktemp("shared-serve-log") / "serve.log",
        backend_args=backend_args,
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def shared_memory_server(
    shared_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    yield from _serve_shared(shared_data_dir, tmp_path_factory, ())


@pytest.fixture(scope="session")
def shared_redis_server(
    shared_data_dir: Path, tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[RunningServer]:
    """(Depends on ``redis_server`` so that Redis stops only after this node.)"""
    prefix = f"shared{uuid.uuid4().hex[:12]}:"
    args = ("--redis", redis_server.url, "--redis-prefix", prefix)
    yield from _serve_shared(shared_data_dir, tmp_path_factory, args)


@pytest.fixture
def shared_server(backend: str, request: pytest.FixtureRequest) -> RunningServer:
    """The default `callbox serve` of this test worker on this backend, started once and
    shared by the tests that ask for it, one test at a time (xdist runs a worker's tests one
    after another). Only for tests that leave nothing another test could see: each keeps to
    rooms and client addresses of its own (``shared_clients``), and none stops the server,
    asserts on its whole log or on absolute metric values. A test that needs a server of its
    own (flags, a restart, exact counts, the default room, 127.0.0.1's limits) takes
    ``callbox_server`` / ``start_server``."""
    server: RunningServer = request.getfixturevalue(f"shared_{backend}_server")
    if server.process.poll() is not None:
        raise RuntimeError(f"the shared callbox serve has exited:\n{server.log()}")
    return server
