"""Signaling benchmarks: callbox against a seed-like Node socket.io server, same run.

    .venv/bin/python bench/signaling.py lobby   [--rounds 3] [--profile FILE] [--modes ...]
    .venv/bin/python bench/signaling.py rooms   [--pairs 50,1000]
    .venv/bin/python bench/signaling.py idle    [--connections 2000,10000] [--hold 60]

Each round starts fresh servers: the baseline (bench/baseline/server.js), then callbox in
each mode (memory; redis = 1 node on Redis; redis2 = 2 nodes on one Redis, half the
clients on each), interleaved, the server pinned to core 0 and the load generator
(bench/loadgen.cjs) to core 1. Prints a table of medians with ratios to the baseline, and
a last line of JSON. bench/README.md says how to read it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import profiling  # noqa: E402
from bench.report import Column, Row, commit, load_average, machine, num, pct, table  # noqa: E402
from bench.servers import (  # noqa: E402
    BENCH,
    LOADGEN_CORE,
    BenchError,
    Redis,
    Server,
    callbox_has_redis,
    cpu_seconds,
    ensure_node_modules,
    pinned,
    raise_open_files,
    start_baseline,
    start_callbox,
)

MODES = ("memory", "redis", "redis2", "asyncio", "redis-asyncio")
LABELS = {
    "baseline": "baseline (Node)",
    "memory": "callbox",
    "asyncio": "callbox on asyncio's loop",
    "redis-asyncio": "callbox, 1 node on Redis, asyncio's loop",
    "redis": "callbox, 1 node on Redis",
    "redis2": "callbox, 2 nodes on Redis",
}


@dataclass
class Setup:
    """The servers of one contender in one round."""

    protocol: str
    servers: list[Server]
    redis: Redis | None = None
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def urls(self) -> str:
        return ",".join(s.url for s in self.servers)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        if self.redis is not None:
            self.redis.stop()


def start(contender: str) -> Setup:
    if contender == "baseline":
        return Setup("baseline", [start_baseline()])
    # callbox runs on uvloop (its default where installed); these two on asyncio's own loop
    extra = ("--event-loop", "asyncio") if contender.endswith("asyncio") else ()
    if contender in ("memory", "asyncio"):
        return Setup("callbox", [start_callbox(extra=extra)])
    redis = Redis()
    try:
        nodes = 2 if contender == "redis2" else 1
        servers = [start_callbox(f"callbox-node{n}", redis.url, extra=extra) for n in range(nodes)]
    except BaseException:
        redis.stop()
        raise
    return Setup("callbox", servers, redis)


def run_loadgen(
    setup: Setup, options: list[str], on_start: Callable[[], None] | None = None
) -> dict[str, Any]:
    """One loadgen run against ``setup``; Redis and py-spy hooks at its window's edges."""
    pids = ",".join(str(s.pid) for s in setup.servers)
    argv = ["node", str(BENCH / "loadgen.cjs"), "--protocol", setup.protocol]
    argv += ["--url", setup.urls, "--server-pids", pids, *options]
    process = subprocess.Popen(pinned(LOADGEN_CORE, argv), stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    result: dict[str, Any] | None = None
    redis_at: dict[str, tuple[int, float]] = {}
    for line in process.stdout:
        if line.startswith("phase ") and setup.redis is not None:
            redis = setup.redis
            redis_at[line.split()[1]] = (redis.calls(), cpu_seconds(redis.process.pid))
        if line.startswith("phase start") and on_start is not None:
            on_start()
        if line.startswith("result "):
            result = json.loads(line[len("result ") :])
    if process.wait() != 0 or result is None:
        dead = [f"{s.name}:\n{s.log_tail()}" for s in setup.servers if s.process.poll() is not None]
        raise BenchError(f"the load generator failed ({setup.protocol}) {' '.join(dead)}")
    if "start" in redis_at and "end" in redis_at:
        # less the INFO that took the first count
        result["redisCalls"] = redis_at["end"][0] - redis_at["start"][0] - 1
        result["redisCpuSeconds"] = redis_at["end"][1] - redis_at["start"][1]
    return result


def calls_row(r: dict[str, Any]) -> Row:
    done = r["handshakes"]
    per = (lambda v: 1000 * v / done) if done else (lambda v: None)
    row: Row = {
        "handshakes_per_s": r["handshakesPerSecond"],
        "cpu_ms": per(sum(r["serverCpuSeconds"])),
        "server_cpu": sum(r["serverCpuSeconds"]) / r["seconds"],
        "p50": r["answerToResponseP50"],
        "p99": r["answerToResponseP99"],
        "loadgen_cpu": r["loadgenCpu"],
        "failed": r["failed"],
        "errors": r["errorCount"] + r["outOfOrder"],
    }
    for n, seconds in enumerate(r["serverCpuSeconds"]):
        row[f"cpu_ms_node{n}"] = per(seconds)
    if "redisCalls" in r:
        row["redis_cmds"] = r["redisCalls"] / done if done else None
        row["redis_cpu_ms"] = per(r["redisCpuSeconds"])
    return row


CALL_COLUMNS = [
    Column("handshakes/s", "handshakes_per_s", num(1), True),
    Column("CPU ms/handshake", "cpu_ms", num(2), True),
    Column("server CPU", "server_cpu", pct),
    Column("answer->response p50 ms", "p50", num(1), True),
    Column("p99 ms", "p99", num(1), True),
    Column("loadgen CPU", "loadgen_cpu", pct),
    Column("failed", "failed", num(0)),
    Column("errors", "errors", num(0)),
]
REDIS_COLUMNS = [
    Column("node0 ms/hs", "cpu_ms_node0", num(2), True),
    Column("node1 ms/hs", "cpu_ms_node1", num(2), True),
    Column("redis cmds/hs", "redis_cmds", num(1)),
    Column("redis CPU ms/hs", "redis_cpu_ms", num(2)),
]


def ratio_pairs(results: dict[str, list[Row]]) -> list[tuple[str, str]]:
    """Every callbox contender against the baseline; the others also against in-memory
    callbox, and Redis on asyncio's loop against in-memory on asyncio's loop."""
    base, memory = LABELS["baseline"], LABELS["memory"]
    pairs = [(name, base) for name in results if name != base]
    pairs += [
        (name, memory) for name in results if memory in results and name not in (base, memory)
    ]
    if LABELS["redis-asyncio"] in results and LABELS["asyncio"] in results:
        pairs.append((LABELS["redis-asyncio"], LABELS["asyncio"]))
    return pairs


def contenders(modes: list[str]) -> list[str]:
    if any(m.startswith("redis") for m in modes) and not callbox_has_redis():
        raise BenchError(
            "`callbox serve --redis` does not exist yet (issue 9): run with --modes memory"
        )
    return ["baseline", *modes]


def rounds_of(
    args: argparse.Namespace, options: list[str], to_row: Callable[[dict[str, Any]], Row]
) -> dict[str, list[Row]]:
    """``args.rounds`` rounds, every contender once per round, in the same order each time."""
    results: dict[str, list[Row]] = {LABELS[c]: [] for c in contenders(args.modes)}
    for n in range(args.rounds):
        for contender in contenders(args.modes):
            setup = start(contender)
            try:
                raw = run_loadgen(setup, options)
            finally:
                setup.stop()
            row = to_row(raw)
            results[LABELS[contender]].append(row)
            failures = raw.get("failures") or raw.get("errors") or []
            note = f" (first failure: {failures[0]})" if failures else ""
            print(f"  round {n + 1} {contender}: {_brief(row)}{note}", file=sys.stderr)
    return results


def _brief(row: Row) -> str:
    return ", ".join(f"{k} {v:.3g}" for k, v in row.items() if isinstance(v, int | float))


def calls_options(args: argparse.Namespace, pairs: int, rooms: str) -> list[str]:
    duration = args.duration if args.duration else (10 if pairs <= 100 else 20)
    return [
        "--workload", "calls", "--pairs", str(pairs), "--rooms", rooms,
        "--offer-bytes", "4600", "--candidates", "8",
        "--warmup", str(args.warmup), "--duration", str(duration), "--timeout", "15",
    ]  # fmt: skip


def profile_lobby(args: argparse.Namespace, options: list[str]) -> list[tuple[float, str]]:
    """One more callbox lobby run (``--profile-mode``: in memory, or one node on Redis) with
    py-spy attached to its (first) node during its window."""
    output = Path(args.profile)
    setup = start(args.profile_mode)
    recorder: list[subprocess.Popen[bytes]] = []
    window = args.duration or 10
    try:
        run_loadgen(
            setup,
            options,
            on_start=lambda: recorder.append(
                profiling.record(setup.servers[0].pid, window, output)
            ),
        )
        if recorder:
            recorder[0].wait(timeout=60)
    finally:
        setup.stop()
    if not output.exists():
        raise BenchError(f"py-spy wrote no profile to {output}")
    return profiling.top_own_time(output)


def header(what: str, args: argparse.Namespace) -> str:
    return (
        f"{what}; {args.rounds} rounds interleaved; commit {commit()}; {machine()}; "
        f"load average before {load_average()}"
    )


def cmd_calls(args: argparse.Namespace, workload: str) -> dict[str, Any]:
    sizes = [50] if workload == "lobby" else args.pairs
    rooms = "lobby" if workload == "lobby" else "own"
    columns = CALL_COLUMNS + (
        REDIS_COLUMNS if any(m.startswith("redis") for m in args.modes) else []
    )
    out: dict[str, Any] = {"workload": workload, "commit": commit(), "sizes": {}}
    for pairs in sizes:
        where = "everyone in one room" if rooms == "lobby" else "each pair in its own room"
        what = f"{workload}: {pairs} pairs in flight, {where}, 4.6 KB offers, 8+8 candidates"
        title = header(what, args)
        print(title, file=sys.stderr)
        results = rounds_of(args, calls_options(args, pairs, rooms), calls_row)
        text, figures = table(title + f"; load average after {load_average()}", columns,
                              results, ratio_pairs(results))  # fmt: skip
        print(text)
        out["sizes"][str(pairs)] = {"rounds": results, **figures}
    if args.profile:  # the last size of the workload, once more, with py-spy attached
        top = profile_lobby(args, calls_options(args, sizes[-1], rooms))
        who = "callbox" if args.profile_mode == "memory" else "callbox, 1 node on Redis,"
        print(f"py-spy, {who} in the {workload} workload ({args.profile}), top by own time:")
        for share, name in top:
            print(f"  {100 * share:5.1f}%  {name}")
        out["profile"] = {"file": args.profile, "top": [[s, n] for s, n in top]}
    return out


def idle_row(r: dict[str, Any]) -> Row:
    return {
        "connections": r["connections"],
        "kb_per_connection": r["rssPerConnection"] / 1000,
        "alive": r["pinged"] / r["connections"],
        "refused": r["refused"],
        "connect_s": r["connectSeconds"],
        "min_pings": r["minPings"],
        "loadgen_cpu": r["loadgenCpu"],
    }


IDLE_COLUMNS = [
    Column("RSS kB/connection", "kb_per_connection", num(1), True),
    Column("alive after hold", "alive", pct),
    Column("min pings", "min_pings", num(0)),
    Column("refused", "refused", num(0)),
    Column("connect s", "connect_s", num(1)),
    Column("loadgen CPU", "loadgen_cpu", pct),
]


def cmd_idle(args: argparse.Namespace) -> dict[str, Any]:
    limit = raise_open_files()
    out: dict[str, Any] = {"workload": "idle", "commit": commit(), "sizes": {}}
    for count in args.connections:
        if count + 100 > limit:
            raise BenchError(f"{count} connections need more open files than the limit ({limit})")
        what = f"idle: {count} connections held {args.hold} s (engine.io pings every 25 s)"
        title = header(what, args)
        print(title, file=sys.stderr)
        options = ["--workload", "idle", "--connections", str(count), "--hold", str(args.hold)]
        results = rounds_of(args, options, idle_row)
        text, figures = table(title + f"; load average after {load_average()}", IDLE_COLUMNS,
                              results, ratio_pairs(results))  # fmt: skip
        print(text)
        out["sizes"][str(count)] = {"rounds": results, **figures}
    return out


def int_list(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def mode_list(text: str) -> list[str]:
    modes = text.split(",")
    for mode in modes:
        if mode not in MODES:
            raise argparse.ArgumentTypeError(f"unknown mode {mode!r} (choose from {MODES})")
    return modes


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="workload", required=True)
    for name, text in (
        ("lobby", "50 pairs in one room: the seed's own workload"),
        ("rooms", "each pair in its own room"),
        ("idle", "many idle connections: memory per connection, all alive after pings"),
    ):
        s = sub.add_parser(name, help=text)
        s.add_argument("--rounds", type=int, default=3)
        s.add_argument("--modes", type=mode_list, default=["memory"],
                       help="callbox modes, comma-separated: memory,redis,redis2 (uvloop), "
                            "asyncio,redis-asyncio (asyncio's own loop)")  # fmt: skip
        if name != "idle":
            s.add_argument("--warmup", type=float, default=2)
            s.add_argument("--duration", type=float, default=0,
                           help="seconds measured per round (10; 20 above 100 pairs)")  # fmt: skip
        if name != "idle":
            s.add_argument("--profile", help="also record callbox with py-spy: speedscope file")
            s.add_argument("--profile-mode", choices=("memory", "redis"), default="memory",
                           help="the callbox mode --profile records (default: memory)")  # fmt: skip
        if name == "rooms":
            s.add_argument("--pairs", type=int_list, default=[50, 1000])
        if name == "idle":
            s.add_argument("--connections", type=int_list, default=[2000, 10000])
            s.add_argument("--hold", type=int, default=60)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        contenders(args.modes)  # fails at once when a mode cannot run
        ensure_node_modules()
        raise_open_files()
        started = time.monotonic()
        out = cmd_idle(args) if args.workload == "idle" else cmd_calls(args, args.workload)
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    out["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(out, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
