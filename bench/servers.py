"""The processes a signaling benchmark runs: the Node baseline, `callbox serve` (in memory or
on Redis), redis-server and the Node load generator, each pinned to its core."""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
NODE_DIR = BENCH / "baseline"
SERVER_CORE = "0"  # the server under test
LOADGEN_CORE = "1"  # the load generator (and redis-server, py-spy)


class BenchError(Exception):
    """Something the bench needs is missing or did not start: one line for the user."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pinned(core: str, argv: list[str]) -> list[str]:
    """argv run on one core, when the machine has more than one and taskset exists."""
    if (os.cpu_count() or 1) > 1 and shutil.which("taskset"):
        return ["taskset", "-c", core, *argv]
    return argv


def raise_open_files() -> int:
    """Lift the soft limit on open files to the hard one (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def ensure_node_modules() -> None:
    """`npm ci` in bench/baseline/ when its node_modules is missing or older than the lock."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise BenchError("node and npm are needed (bash scripts/setup installs them)")
    lock = NODE_DIR / "package-lock.json"
    marker = NODE_DIR / "node_modules" / ".package-lock.json"
    if marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    print("bench: npm ci in bench/baseline/", file=sys.stderr)
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR, check=False
    )
    if done.returncode != 0:
        raise BenchError("npm ci in bench/baseline/ failed")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.tmp is not None:
            self.tmp.cleanup()


def _spawn(
    name: str,
    argv: list[str],
    url: str,
    env: dict[str, str] | None = None,
    tmp: tempfile.TemporaryDirectory[str] | None = None,
) -> Server:
    tmp = tmp or tempfile.TemporaryDirectory(prefix=f"callbox-bench-{name}-")
    log_path = Path(tmp.name) / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    return Server(name, url, process, log_path, tmp)


def _wait_http(server: Server, path: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(f"{server.name} exited at start:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url + path, timeout=2):
                return
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise BenchError(f"{server.name} did not start in 30 s:\n{server.log_tail()}")


def start_baseline() -> Server:
    port = free_port()
    argv = pinned(SERVER_CORE, ["node", str(NODE_DIR / "server.js"), "--port", str(port)])
    server = _spawn("baseline", argv, f"http://127.0.0.1:{port}")
    _wait_http(server, "/socket.io/?EIO=4&transport=polling")
    return server


# limits out of the way: the benchmark measures the work, not the refusals
CALLBOX_FLAGS = [
    "--http",
    "--max-connections-per-ip", "1000000",
    "--event-rate", "1000000",
    "--event-burst", "1000000",
    "--max-waiting-offers", "1000000",
    "--max-room-offer-bytes", str(2**40),
    "--max-queued-bytes", str(2**40),
    "--max-queued-bytes-per-ip", str(2**40),  # every client of the loadgen is 127.0.0.1
]  # fmt: skip


def callbox_has_redis() -> bool:
    done = subprocess.run(
        [sys.executable, "-m", "callbox", "serve", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    return re.search(r"--redis\b", done.stdout) is not None


def start_callbox(
    name: str = "callbox",
    redis_url: str | None = None,
    pin: bool = True,
    extra: tuple[str, ...] = (),
) -> Server:
    port = free_port()
    tmp = tempfile.TemporaryDirectory(prefix=f"callbox-bench-{name}-")
    argv = [sys.executable, "-m", "callbox", "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--data-dir", tmp.name, *CALLBOX_FLAGS, *extra]
    if redis_url is not None:
        argv += ["--redis", redis_url]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("CALLBOX_PASSWORD", None)
    argv = pinned(SERVER_CORE, argv) if pin else argv
    server = _spawn(name, argv, f"http://127.0.0.1:{port}", env, tmp)
    _wait_http(server, "/healthz")
    return server


class Redis:
    """A throwaway redis-server on a free port (no persistence), pinned beside the loadgen."""

    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            raise BenchError("redis-server is needed (bash scripts/setup --test installs it)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            pinned(LOADGEN_CORE, argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                self.command("PING")
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise BenchError("redis-server did not start") from None
                time.sleep(0.05)

    def command(self, *words: str) -> str:
        """One command, its reply as text (enough for PING, INFO and FLUSHALL)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            request = f"*{len(words)}\r\n".encode()
            for word in words:
                raw = word.encode()
                request += f"${len(raw)}\r\n".encode() + raw + b"\r\n"
            s.sendall(request)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                if data.startswith((b"+", b"-", b":")) and data.endswith(b"\r\n"):
                    break
                if data.startswith(b"$"):
                    head, _, rest = data.partition(b"\r\n")
                    if len(rest) >= int(head[1:]) + 2:
                        break
        return data.decode(errors="replace")

    def calls(self) -> int:
        """Commands run so far (INFO commandstats: the sum of calls=)."""
        stats = self.command("INFO", "commandstats")
        return sum(int(n) for n in re.findall(r"calls=(\d+)", stats))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
