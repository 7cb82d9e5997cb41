"""A wheel built from the repo carries the web client and the socket.io browser client."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_contains_the_web_client_and_the_npm_socket_io_client(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    [wheel] = tmp_path.glob("callbox-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "callbox/web/index.html",
        "callbox/web/js/main.js",
        "callbox/web/vendor/socket.io.esm.min.js",
        "callbox/web/vendor/uqr.mjs",  # the QR encoder of the room link (npm package uqr)
        "callbox/py.typed",
    ):
        assert expected in names, expected
    vendored = zipfile.ZipFile(wheel).read("callbox/web/vendor/socket.io.esm.min.js")
    npm_copy = ROOT / "node_modules/socket.io-client/dist/socket.io.esm.min.js"
    assert vendored == npm_copy.read_bytes()  # the registry's file, not a copy in the repo


def test_the_socket_io_client_is_not_committed() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    assert not [p for p in tracked if "socket.io" in p and p.endswith(".js")]
