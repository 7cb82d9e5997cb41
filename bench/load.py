"""Load benchmark: start `callbox serve`, run N sessions doing full handshakes, print figures.

.venv/bin/python bench/load.py --sessions 1000 --handshakes 5 --candidates 10 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integration.loadgen import rss, run_load  # noqa: E402
from tests.integration.server_proc import launch  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--handshakes", type=int, default=5)
    parser.add_argument("--candidates", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = launch(Path(tmp), Path(tmp), "--max-connections-per-ip", str(args.sessions + 10))
        try:
            mib = 1024 * 1024
            print(f"RSS at start: {rss(server.get('/metrics')[1].decode()) / mib:.1f} MiB")
            for n in range(1, args.rounds + 1):
                r = asyncio.run(
                    run_load(
                        server.url, server.ca_path, args.sessions, args.handshakes, args.candidates
                    )
                )
                memory = rss(server.get("/metrics")[1].decode()) / mib
                print(
                    f"round {n}: {r.sessions} sessions, {r.handshakes} handshakes in "
                    f"{r.seconds:.1f}s ({r.handshakes / r.seconds:.0f}/s); candidates sent "
                    f"{r.candidates_sent}, received {r.candidates_received}, lost {r.lost}, "
                    f"duplicated {r.duplicated}, out of order {r.out_of_order}, "
                    f"errors {len(r.errors)}; RSS after {memory:.1f} MiB"
                )
                for error in r.errors[:5]:
                    print("  error:", error)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
