"""Hatch build hook: put the browser client's npm packages into the package.

The web client imports ``/vendor/socket.io.esm.min.js`` (socket.io client) and
``/vendor/uqr.mjs`` (QR codes of the room link). Those files come from the npm registry
(``package.json`` + ``package-lock.json``); they are never committed. This hook runs
``npm ci`` when ``node_modules`` lacks them and copies them into ``src/callbox/web/vendor/``
(gitignored), which the wheel includes as an artifact and an editable install serves directly.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

# node_modules path -> name under web/vendor/
_FILES = {
    "socket.io-client/dist/socket.io.esm.min.js": "socket.io.esm.min.js",
    "socket.io-client/dist/socket.io.esm.min.js.map": "socket.io.esm.min.js.map",
    "uqr/dist/index.mjs": "uqr.mjs",
}


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        source = root / "node_modules"
        if not all((source / name).is_file() for name in _FILES):
            npm = shutil.which("npm")
            if npm is None:
                raise RuntimeError(
                    "callbox build: npm is required to fetch the web client's packages "
                    "(install Node.js and npm, e.g. `apt-get install npm`, then build again)"
                )
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=root, check=True)
        target = root / "src/callbox/web/vendor"
        target.mkdir(parents=True, exist_ok=True)
        for name, vendored in _FILES.items():
            shutil.copyfile(source / name, target / vendored)
