"""Hatch build hook: put the socket.io browser client from npm into the package.

The web client imports ``/vendor/socket.io.esm.min.js``. That file comes from the npm
registry (``package.json`` + ``package-lock.json``); it is never committed. This hook runs
``npm ci`` when ``node_modules`` lacks it and copies it into ``src/callbox/web/vendor/``
(gitignored), which the wheel includes as an artifact and an editable install serves directly.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

_DIST = Path("node_modules/socket.io-client/dist")
_FILES = ("socket.io.esm.min.js", "socket.io.esm.min.js.map")


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        source = root / _DIST
        if not (source / _FILES[0]).is_file():
            npm = shutil.which("npm")
            if npm is None:
                raise RuntimeError(
                    "callbox build: npm is required to fetch the socket.io browser client "
                    "(install Node.js and npm, e.g. `apt-get install npm`, then build again)"
                )
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=root, check=True)
        target = root / "src/callbox/web/vendor"
        target.mkdir(parents=True, exist_ok=True)
        for name in _FILES:
            shutil.copyfile(source / name, target / name)
