"""A real coturn for the tests: started on free ports, ready once it answers a STUN binding
request, stopped afterwards. TURN REST credentials (coturn's ``use-auth-secret``) and a TURN
allocation client, so tests can check what coturn accepts.

Use the ``coturn`` fixture (one coturn for the whole test session, shared: it keeps no state a
test could see) or ``start_coturn(...)`` for one with options of its own (short lifetimes, a
network namespace, another secret). Import the fixture into a conftest or a test module:
``from tests.coturn import coturn  # noqa: F401``.

Flags and the reasons for them: shared/BROWSER_TESTING.md ("coturn, relay-only").
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aioice import stun
from aioice.turn import TurnTransport, create_turn_endpoint

TURNSERVER = shutil.which("turnserver")
READY_TIMEOUT = 20.0
REALM = "callbox.test"
# Relay ports are taken from above the kernel's ephemeral range (32768-60999 by default), in
# a random window, so parallel coturns and ordinary sockets rarely collide; coturn skips a
# port it cannot bind.
_RELAY_RANGE = (61000, 65000)
_RELAY_PORTS = 40


def rest_username(name: str, expiry: float) -> str:
    """TURN REST username: ``<unix expiry>:<name>``."""
    return f"{int(expiry)}:{name}"


def rest_password(secret: str, username: str) -> str:
    """TURN REST password: base64(HMAC-SHA1(secret, username))."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def free_udp_tcp_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on ``host`` (coturn listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port: int = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no port free for both UDP and TCP")


def stun_binding(host: str, port: int, timeout: float = 1.0) -> tuple[str, int] | None:
    """Send one STUN binding request over UDP; the XOR-MAPPED-ADDRESS it got, or None."""
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(bytes(request), (host, port))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                data, _ = sock.recvfrom(2048)
                try:
                    response = stun.parse_message(data)
                except ValueError:
                    continue
                if response.transaction_id != request.transaction_id:
                    continue
                mapped = response.attributes.get("XOR-MAPPED-ADDRESS")
                return (str(mapped[0]), int(mapped[1])) if mapped else None
        except OSError:  # refused (nothing listening yet) or timed out
            return None
    return None


@dataclass
class Coturn:
    """A running turnserver."""

    host: str
    port: int
    secret: str
    process: subprocess.Popen[bytes]
    workdir: Path
    realm: str = REALM
    #: command prefix coturn runs under (e.g. ``ip netns exec NS``)
    prefix: tuple[str, ...] = ()
    relay_ports: tuple[int, int] = (0, 0)
    _stopped: bool = field(default=False, repr=False)

    def url(self, transport: str = "udp") -> str:
        """``turn:host:port?transport=udp|tcp`` for ``--turn-url`` or an RTCIceServer."""
        return f"turn:{self.host}:{self.port}?transport={transport}"

    @property
    def stun_url(self) -> str:
        return f"stun:{self.host}:{self.port}"

    def credentials(
        self, name: str = "test", ttl: float = 3600, *, secret: str | None = None
    ) -> tuple[str, str]:
        """(username, password) valid for ``ttl`` seconds from now (negative: expired)."""
        username = rest_username(name, time.time() + ttl)
        return username, rest_password(self.secret if secret is None else secret, username)

    def ice_server(self, name: str = "test", ttl: float = 3600) -> dict[str, Any]:
        username, credential = self.credentials(name, ttl)
        return {"urls": self.url(), "username": username, "credential": credential}

    def log(self) -> str:
        return (self.workdir / "turnserver.log").read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _config_lines(
    host: str,
    port: int,
    relay_ip: str,
    relay_ports: tuple[int, int],
    secret: str,
    workdir: Path,
    options: Sequence[str],
) -> list[str]:
    # The same lines docs/deploy.md tells an operator to write, plus what a test needs (a
    # loopback relay, files in a temporary directory, no CLI, no TLS).
    return [
        f"listening-ip={host}",
        f"relay-ip={relay_ip}",
        f"listening-port={port}",
        f"min-port={relay_ports[0]}",
        f"max-port={relay_ports[1]}",
        "use-auth-secret",
        f"static-auth-secret={secret}",
        f"realm={REALM}",
        "fingerprint",
        "no-cli",
        "no-tls",
        "no-dtls",
        "no-multicast-peers",
        "no-software-attribute",
        f"log-file={workdir / 'turnserver.log'}",
        "simple-log",
        f"pidfile={workdir / 'turnserver.pid'}",
        f"userdb={workdir / 'turndb'}",
        *options,
    ]


def probe(host: str, port: int, prefix: Sequence[str] = ()) -> bool:
    """Does something answer STUN on ``host:port``? With a ``prefix`` (``ip netns exec NS``)
    the request is sent from a child process under it."""
    if not prefix:
        return stun_binding(host, port) is not None
    argv = [*prefix, sys.executable, "-m", "tests.coturn", "probe", host, str(port)]
    done = subprocess.run(argv, capture_output=True, timeout=15, check=False)
    return done.returncode == 0


def start_coturn(
    *,
    secret: str | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    relay_ip: str | None = None,
    allow_loopback_peers: bool = True,
    options: Sequence[str] = (),
    prefix: Sequence[str] = (),
) -> Coturn:
    """Start turnserver and wait until it answers STUN. ``options``: extra turnserver.conf
    lines (e.g. ``"max-allocate-lifetime=30"``, ``"denied-peer-ip=10.0.0.0-10.255.255.255"``).
    ``prefix``: a command to run it under (``("ip", "netns", "exec", NS)``); then give
    ``port``, which cannot be checked for being free from here."""
    if TURNSERVER is None:
        pytest.skip("coturn is not installed (apt-get install coturn)")
    secret = secret if secret is not None else secrets.token_urlsafe(24)
    port = port if port is not None else free_udp_tcp_port(host)
    low = random.randrange(_RELAY_RANGE[0], _RELAY_RANGE[1] - _RELAY_PORTS)
    relay_ports = (low, low + _RELAY_PORTS - 1)
    workdir = Path(tempfile.mkdtemp(prefix="callbox-coturn-"))
    extra = [*options, *(["allow-loopback-peers"] if allow_loopback_peers else [])]
    lines = _config_lines(host, port, relay_ip or host, relay_ports, secret, workdir, extra)
    conf = workdir / "turnserver.conf"
    conf.write_text("\n".join(lines) + "\n")
    conf.chmod(0o600)  # it holds the secret
    argv = [*prefix, TURNSERVER, "-c", str(conf)]
    # coturn prints its banner and a line per unsupported socket type on stdout: the log file
    # has everything useful
    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir
    )
    server = Coturn(host, port, secret, process, workdir, prefix=tuple(prefix))
    server.relay_ports = relay_ports
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = server.log() if (workdir / "turnserver.log").exists() else ""
            server.stop()
            raise RuntimeError(f"turnserver exited early ({process.returncode}):\n{log}")
        if probe(host, port, prefix):
            return server
        time.sleep(0.1)
    log = server.log() if (workdir / "turnserver.log").exists() else ""
    server.stop()
    raise RuntimeError(f"turnserver did not answer STUN on {host}:{port} in time:\n{log}")


@contextlib.contextmanager
def running_coturn(**kwargs: Any) -> Iterator[Coturn]:
    """``start_coturn(...)`` as a context manager: stopped (and its files removed) after."""
    server = start_coturn(**kwargs)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def coturn() -> Iterator[Coturn]:
    """One coturn on loopback for the whole test session (free ports, a random secret)."""
    with running_coturn() as server:
        yield server


# --- a TURN client: does coturn allocate a relay for these credentials? ----------------------


@dataclass(frozen=True, slots=True)
class Allocation:
    """The outcome of one TURN Allocate: a relayed address, or the error coturn gave."""

    relayed: tuple[str, int] | None
    error: str | None = None
    #: the STUN error code (401 wrong credentials, 437 ...), None on success or a timeout
    code: int | None = None


class RelayProtocol(asyncio.DatagramProtocol):
    """What arrives through a relay (``received``); tells when the relay is closed."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait((data, addr))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


@contextlib.asynccontextmanager
async def open_relay(
    host: str, port: int, username: str, password: str, *, transport: str = "udp"
) -> AsyncIterator[tuple[TurnTransport, RelayProtocol]]:
    """A TURN allocation (aioice's client, which refreshes it) for the ``with`` block; raises
    ``stun.TransactionFailed`` when coturn refuses it. Released (deleted) afterwards."""
    async with asyncio.timeout(15):
        relay, protocol = await create_turn_endpoint(
            RelayProtocol,
            server_addr=(host, port),
            username=username,
            password=password,
            transport=transport,
        )
    try:
        yield relay, protocol
    finally:
        relay.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await protocol.closed


async def allocate(
    host: str, port: int, username: str, password: str, *, transport: str = "udp"
) -> Allocation:
    """Try a TURN allocation, then release it."""
    try:
        async with open_relay(host, port, username, password, transport=transport) as (relay, _):
            relayed = relay.get_extra_info("sockname")
            return Allocation((str(relayed[0]), int(relayed[1])))
    except stun.TransactionFailed as e:
        return Allocation(None, str(e), e.response.error_code)
    except (stun.TransactionTimeout, TimeoutError, OSError, ConnectionError) as e:
        return Allocation(None, str(e) or type(e).__name__)


def main(argv: Sequence[str]) -> int:
    """``python -m tests.coturn probe HOST PORT``: exit 0 if a STUN server answers there
    (used to probe a coturn inside a network namespace)."""
    if len(argv) == 3 and argv[0] == "probe":
        return 0 if stun_binding(argv[1], int(argv[2])) is not None else 1
    print("usage: python -m tests.coturn probe HOST PORT", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
