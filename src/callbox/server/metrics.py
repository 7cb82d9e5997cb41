"""Prometheus metrics of one server, in a registry of its own (no process globals).

Everything here is cheap to scrape: counters, and gauges read from in-memory counts (the
store's figures are refreshed by the ``/metrics`` handler before rendering). The heap walk
(``callbox_python_objects``, after a full collection) costs tens of milliseconds with many
sessions and is only registered with ``--debug-metrics``.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
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


class Tally:
    """A counter by one label for what happens per message, counted in a plain dict (the
    event loop is the only counter; prometheus_client's ``Counter.inc`` takes a lock each
    time: 2.4% of the lobby's CPU) and exported as a counter at each scrape (a collector of
    the registry, prometheus_client's extension point)."""

    def __init__(self, name: str, documentation: str, label: str, registry: CollectorRegistry):
        self.name, self.documentation, self.label = name, documentation, label
        self.counts: dict[str, int] = {}
        registry.register(self)

    def add(self, value: str) -> None:
        counts = self.counts
        counts[value] = counts.get(value, 0) + 1

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=[self.label])
        for value, count in list(self.counts.items()):
            family.add_metric([value], float(count))
        yield family


class Metrics:
    def __init__(self, *, debug: bool = False) -> None:
        registry = self.registry = CollectorRegistry()
        # process_resident_memory_bytes & co., read at scrape (Linux /proc)
        ProcessCollector(registry=registry)
        self.sessions = Gauge(
            "callbox_sessions", "Signaling sessions whose socket is on this node", registry=registry
        )
        self.held = Gauge(
            "callbox_sessions_held",
            "Sessions waiting for their client to resume (all nodes)",
            registry=registry,
        )
        self.waiting_offers = Gauge(
            "callbox_waiting_offers", "Offers nobody has answered yet", registry=registry
        )
        self.calls = Gauge("callbox_active_calls", "Answered calls in progress", registry=registry)
        self.events = Tally("callbox_events", "Client events received", "event", registry)
        self.relayed = Tally(
            "callbox_deliveries",
            "Events delivered to sessions or rooms, by event",
            "event",
            registry,
        )
        self.resumes = Counter(
            "callbox_resumes", "Sessions resumed after their socket dropped", registry=registry
        )
        self.errors = Counter(
            "callbox_errors", "Requests refused, by error code", ["code"], registry=registry
        )
        self.limits = Counter(
            "callbox_limit_exceeded",
            "Requests refused because a configured limit was exceeded, by limit",
            ["limit"],
            registry=registry,
        )
        self.dropped = Counter(
            "callbox_connections_dropped",
            "Connections closed for a protocol violation or a budget, by why",
            ["why"],
            registry=registry,
        )
        self.answer_latency = Histogram(
            "callbox_answer_seconds",
            "From a newAnswer's arrival to its answerResponse handed to the caller's socket "
            "(or to the caller's node)",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=registry,
        )
        tasks = self._tasks = Gauge(
            "callbox_asyncio_tasks",
            "asyncio tasks alive in the server (kind=ping: engine.io's per-socket ping timers, "
            "timers of the loop rather than tasks: server/pings.py)",
            ["kind"],
            registry=registry,
        )
        tasks.labels(kind="other").set_function(lambda: _task_count(ping_timers=False))
        self.watch_pings(lambda: 0)
        if debug:
            objects = Gauge(
                "callbox_python_objects",
                "Live objects the garbage collector tracks, after a collection (a leak "
                "shows here even when the allocator keeps freed memory, which hides it from "
                "the RSS)",
                registry=registry,
            )
            objects.set_function(_live_objects)
        self.turn_credentials = Counter(
            "callbox_turn_credentials_issued",
            "TURN credentials minted for clients (welcome, iceServers, GET /config)",
            registry=registry,
        )
        self.store_entries = Gauge(
            "callbox_store_entries",
            "Entries in the in-memory tables (sessions, offers, mailboxes, ...)",
            ["table"],
            registry=registry,
        )

    def event(self, name: str) -> None:
        self.events.add(name)

    def delivered(self, name: str) -> None:
        self.relayed.add(name)

    def error(self, code: str) -> None:
        self.errors.labels(code=str(code)).inc()

    def limit(self, name: str) -> None:
        self.limits.labels(limit=name).inc()

    def watch_pings(self, timers: Callable[[], int]) -> None:
        """Report engine.io's ping timers: ``timers()`` of them, plus any ping task."""
        self._tasks.labels(kind="ping").set_function(
            lambda: timers() + _task_count(ping_timers=True)
        )

    def watch_tables(self, counts: Callable[[], dict[str, int]]) -> None:
        """Report in-memory table sizes at each scrape."""

        def reader(table: str) -> Callable[[], float]:
            return lambda: counts().get(table, 0)

        for table in counts():
            self.store_entries.labels(table=table).set_function(reader(table))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _live_objects() -> int:
    """Collected first: the young generation is collected only every 50,000 allocations
    (server/gcpace.py), so cyclic garbage could otherwise be counted as a leak."""
    gc.collect()
    return len(gc.get_objects())
