"""Rate and connection limits: a token bucket per session and a counter per address.

Both are per process (a session's socket lives on one process) and take an injectable clock,
so the rules are unit-tested without sleeping. Exceeding either raises :class:`SignalingError`
``rate_limited`` whose ``limit`` names it for ``/metrics``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from callbox.signaling.model import ErrorCode, SignalingError


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per key: ``burst`` events at once, refilled at ``rate`` per second."""

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> None:
        """Spend one token of ``key``; ``rate_limited`` when none is left."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.updated = now
        if bucket.tokens < 1.0:
            raise SignalingError(
                ErrorCode.RATE_LIMITED,
                f"more than {self.burst} events at once or {self.rate:g} per second",
                limit="event_rate",
            )
        bucket.tokens -= 1.0

    def forget(self, key: str) -> None:
        self._buckets.pop(key, None)

    def __len__(self) -> int:
        return len(self._buckets)


class ConnectionCounter:
    """At most ``limit`` connected sessions per address."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._by_address: dict[str, int] = {}
        self._address_of: dict[str, str] = {}

    def acquire(self, sid: str, address: str) -> None:
        """Count ``sid`` against ``address``; ``rate_limited`` when the address is full."""
        if sid in self._address_of:
            return
        count = self._by_address.get(address, 0)
        if count >= self.limit:
            raise SignalingError(
                ErrorCode.RATE_LIMITED,
                f"more than {self.limit} connections from one address",
                limit="connections_per_ip",
            )
        self._by_address[address] = count + 1
        self._address_of[sid] = address

    def release(self, sid: str) -> None:
        address = self._address_of.pop(sid, None)
        if address is None:
            return
        count = self._by_address[address] - 1
        if count:
            self._by_address[address] = count
        else:
            del self._by_address[address]

    def __len__(self) -> int:
        return len(self._address_of)
