"""py-spy around a benchmark window: a speedscope file and the top entries by own time."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.servers import LOADGEN_CORE, BenchError, pinned


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise BenchError("py-spy is needed for --profile: bash scripts/setup --test installs it")
    return found


def record(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    """Start sampling ``pid`` for ``seconds`` (100 Hz, per function, speedscope JSON)."""
    argv = [py_spy(), "record", "--pid", str(pid), "--duration", str(max(1, round(seconds)))]
    argv += ["--rate", "100", "--function", "--format", "speedscope", "--output", str(output)]
    return subprocess.Popen(
        pinned(LOADGEN_CORE, argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def top_own_time(path: Path, count: int = 15) -> list[tuple[float, str]]:
    """(share of samples, "function (file:line)") of the frames that were running."""
    data = json.loads(path.read_text())
    frames = data["shared"]["frames"]
    own: Counter[int] = Counter()
    total = 0.0
    for profile in data["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            if stack:
                own[stack[-1]] += weight
                total += weight
    out = []
    for index, weight in own.most_common(count):
        frame = frames[index]
        where = Path(frame.get("file") or "?")
        short = "/".join(where.parts[-2:])
        line = frame.get("line")
        out.append((weight / total, f"{frame['name']} ({short}{':' + str(line) if line else ''})"))
    return out
