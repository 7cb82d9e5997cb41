"""Prometheus metrics of one server, in a registry of its own (no process globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.sessions = Gauge(
            "callbox_sessions", "Connected signaling sessions", registry=self.registry
        )
        self.events = Counter(
            "callbox_events", "Client events received", ["event"], registry=self.registry
        )
        self.errors = Counter(
            "callbox_errors", "Requests refused, by error code", ["code"], registry=self.registry
        )

    def event(self, name: str) -> None:
        self.events.labels(event=name).inc()

    def error(self, code: str) -> None:
        self.errors.labels(code=str(code)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
