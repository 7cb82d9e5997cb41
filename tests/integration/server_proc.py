"""Start a `callbox serve` process outside the function-scoped ``start_server`` fixture (for
module-scoped servers shared by many examples), and read its /metrics."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import METRICS_TOKEN, RunningServer, _wait_ready, free_port


def launch(data_dir: Path, log_dir: Path, *extra: str) -> RunningServer:
    port = free_port()
    log_path = log_dir / "serve.log"
    argv = [sys.executable, "-m", "callbox", "-v", "serve", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--data-dir", str(data_dir), *extra]
    argv += ["--metrics-token", METRICS_TOKEN]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("CALLBOX_PASSWORD", None)
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    server = RunningServer(
        f"https://127.0.0.1:{port}", port, data_dir, process, log_path, metrics_token=METRICS_TOKEN
    )
    _wait_ready(server)
    return server


def metric(server: RunningServer, name: str, labels: str = "") -> float:
    """One sample of /metrics, e.g. ``metric(s, "callbox_limit_exceeded_total",
    'limit="message"')``; 0 when absent."""
    _, body, _ = server.get("/metrics")
    selector = re.escape(name + ("{" + labels + "}" if labels else ""))
    found = re.search(rf"^{selector} (\S+)$", body.decode(), re.MULTILINE)
    return float(found.group(1)) if found else 0.0
