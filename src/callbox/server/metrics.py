"""Prometheus metrics of one server, in a registry of its own (no process globals)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.process_collector import ProcessCollector

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


def _is_ping_timer(task: asyncio.Task[object]) -> bool:
    # engine.io sleeps one ping interval (25 s) per socket before each ping; after a socket
    # closes its timer lives out that sleep, then ends: counted apart so leaks stand out.
    return getattr(task.get_coro(), "__qualname__", "") == "AsyncSocket._send_ping"


def _task_count(ping_timers: bool) -> int:
    try:
        tasks = asyncio.all_tasks()
    except RuntimeError:  # scraped outside the loop (never by /metrics)
        return 0
    return sum(1 for t in tasks if _is_ping_timer(t) == ping_timers)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # process_resident_memory_bytes & co., read at scrape (Linux /proc)
        ProcessCollector(registry=self.registry)
        self.sessions = Gauge(
            "callbox_sessions", "Connected signaling sessions", registry=self.registry
        )
        self.events = Counter(
            "callbox_events", "Client events received", ["event"], registry=self.registry
        )
        self.resumes = Counter(
            "callbox_resumes", "Sessions resumed after their socket dropped", registry=self.registry
        )
        self.errors = Counter(
            "callbox_errors", "Requests refused, by error code", ["code"], registry=self.registry
        )
        self.limits = Counter(
            "callbox_limit_exceeded",
            "Requests refused because a configured limit was exceeded, by limit",
            ["limit"],
            registry=self.registry,
        )
        tasks = Gauge(
            "callbox_asyncio_tasks",
            "asyncio tasks alive in the server (kind=ping: engine.io's per-socket ping timers)",
            ["kind"],
            registry=self.registry,
        )
        tasks.labels(kind="other").set_function(lambda: _task_count(ping_timers=False))
        tasks.labels(kind="ping").set_function(lambda: _task_count(ping_timers=True))
        objects = Gauge(
            "callbox_python_objects",
            "Objects the garbage collector tracks (a leak shows here even when the allocator "
            "keeps freed memory, which hides it from the RSS)",
            registry=self.registry,
        )
        objects.set_function(lambda: len(gc.get_objects()))
        self.turn_credentials = Counter(
            "callbox_turn_credentials_issued",
            "TURN credentials minted for clients (welcome, iceServers, GET /config)",
            registry=self.registry,
        )
        self.store_entries = Gauge(
            "callbox_store_entries",
            "Entries in the signaling store's tables (sessions, offers, ...)",
            ["table"],
            registry=self.registry,
        )

    def event(self, name: str) -> None:
        self.events.labels(event=name).inc()

    def error(self, code: str) -> None:
        self.errors.labels(code=str(code)).inc()

    def limit(self, name: str) -> None:
        self.limits.labels(limit=name).inc()

    def watch_store(self, counts: Callable[[], dict[str, int]]) -> None:
        """Report the store's table sizes at each scrape."""

        def reader(table: str) -> Callable[[], float]:
            return lambda: counts().get(table, 0)

        for table in counts():
            self.store_entries.labels(table=table).set_function(reader(table))

    def render(self) -> bytes:
        return generate_latest(self.registry)
