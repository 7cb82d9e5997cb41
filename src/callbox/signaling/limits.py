"""Rate and connection limits, keyed by what a client cannot reset.

- :class:`RateLimiter`: a token bucket per *session* (not per socket: a resume continues the
  bucket it left, even on another node, through :meth:`RateLimiter.snapshot` /
  :meth:`RateLimiter.restore`).
- :class:`ConnectionCounter`: sockets per client *address* (an IPv6 client counts by its
  /64, which one subscriber usually holds whole), plus the address's held sessions.
- :class:`ConnectGuard`: connect attempts that fail (wrong password, bad token, spent resume
  token) per address, with exponential backoff: guessing costs time, not just a retry.

All take an injectable clock, so the rules are unit-tested without sleeping. Exceeding one
raises :class:`SignalingError` ``rate_limited`` whose ``limit`` names it for ``/metrics``.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from callbox.signaling.model import ErrorCode, SignalingError


def address_key(address: str) -> str:
    """The unit limits count a client address by: an IPv4 address, or an IPv6 /64."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


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

    def _refilled(self, key: str) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.updated = now
        return bucket

    def take(self, key: str) -> None:
        """Spend one token of ``key``; ``rate_limited`` when none is left."""
        bucket = self._refilled(key)
        if bucket.tokens < 1.0:
            raise SignalingError(
                ErrorCode.RATE_LIMITED,
                f"more than {self.burst} events at once or {self.rate:g} per second",
                limit="event_rate",
            )
        bucket.tokens -= 1.0

    def snapshot(self, key: str) -> float | None:
        """The tokens ``key`` has now (None when it never spent one), to carry elsewhere."""
        if key not in self._buckets:
            return None
        return self._refilled(key).tokens

    def restore(self, key: str, tokens: float, elapsed: float) -> None:
        """Continue a bucket that had ``tokens`` ``elapsed`` seconds ago (on this node or
        another): a resume does not refill the burst."""
        refill = tokens + max(0.0, elapsed) * self.rate
        self._buckets[key] = _Bucket(min(float(self.burst), refill), self._clock())

    def forget(self, key: str) -> None:
        self._buckets.pop(key, None)

    def __len__(self) -> int:
        return len(self._buckets)


class ConnectionCounter:
    """At most ``limit`` sockets per address key, counting also what the caller says the
    address holds elsewhere (its sessions held for a resume)."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._by_address: dict[str, int] = {}
        self._address_of: dict[str, str] = {}

    def acquire(self, sid: str, address: str, *, held: int = 0) -> None:
        """Count ``sid`` against ``address``; ``rate_limited`` when the address is full."""
        if sid in self._address_of:
            return
        count = self._by_address.get(address, 0)
        if count + held >= self.limit:
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

    def count(self, address: str) -> int:
        return self._by_address.get(address, 0)

    def __len__(self) -> int:
        return len(self._address_of)


@dataclass(slots=True)
class _Failures:
    times: deque[float] = field(default_factory=deque)
    blocked_until: float = 0.0


class ConnectGuard:
    """Failed connect attempts per address: ``free`` failures per ``window`` seconds, then
    each further failure blocks the address for twice as long as the last (1 s, 2 s, ... up
    to ``max_block``). A blocked address is refused before its credentials are looked at.
    At most ``capacity`` addresses are remembered (the oldest are forgotten first)."""

    def __init__(
        self,
        *,
        free: int = 5,
        window: float = 60.0,
        max_block: float = 60.0,
        capacity: int = 65536,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free = free
        self.window = window
        self.max_block = max_block
        self.capacity = capacity
        self._clock = clock
        self._seen: OrderedDict[str, _Failures] = OrderedDict()

    def check(self, address: str) -> None:
        """``rate_limited`` while ``address`` is blocked."""
        entry = self._seen.get(address)
        now = self._clock()
        if entry is not None and entry.blocked_until > now:
            wait = entry.blocked_until - now
            raise SignalingError(
                ErrorCode.RATE_LIMITED,
                f"too many failed attempts from this address: retry in {wait:.0f} s",
                limit="connect_failures",
            )

    def failed(self, address: str) -> None:
        now = self._clock()
        entry = self._seen.pop(address, None) or _Failures()
        self._seen[address] = entry  # most recent last
        while entry.times and entry.times[0] <= now - self.window:
            entry.times.popleft()
        entry.times.append(now)
        over = len(entry.times) - self.free
        if over > 0:
            entry.blocked_until = now + min(self.max_block, 2.0 ** (over - 1))
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)

    def __len__(self) -> int:
        return len(self._seen)
