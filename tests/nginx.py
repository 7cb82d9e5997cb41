"""A real nginx in front of callbox nodes, for the tests: run as the test's user from a
directory of its own (config, pid, logs, temp files), on free ports, stopped at the end."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)

#: what every test config starts with (the ``http`` block's body is the test's)
_FRAME = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
{http}
}}
"""


class Nginx:
    def __init__(self, directory: Path, http_block: str, ports: list[int]) -> None:
        if NGINX is None:
            raise RuntimeError("nginx is not installed (scripts/setup --test installs it)")
        self.directory = directory
        self.ports = ports
        self.config = directory / "nginx.conf"
        self.config.write_text(_FRAME.format(dir=directory, http=http_block))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Nginx:
        assert NGINX is not None
        check = subprocess.run(
            [NGINX, "-t", "-p", str(self.directory), "-c", str(self.config)],
            capture_output=True,
            text=True,
        )
        if check.returncode != 0:
            raise RuntimeError(f"nginx refused the config:\n{check.stderr}")
        with (self.directory / "stderr.log").open("ab") as log:
            self.process = subprocess.Popen(
                [NGINX, "-p", str(self.directory), "-c", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        for port in self.ports:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or self.process.poll() is not None:
                        raise RuntimeError(
                            "nginx did not start: " + (self.directory / "error.log").read_text()
                        ) from None
                    time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
