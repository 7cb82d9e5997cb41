"""Log lines an attacker can trigger at will, throttled: a few per key and minute, then a
count of what was left out."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable


class LogThrottle:
    def __init__(
        self,
        logger: logging.Logger,
        *,
        per_minute: int = 5,
        capacity: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self.per_minute = per_minute
        self.capacity = capacity
        self._clock = clock
        # key -> (window start, lines written in it, lines left out)
        self._seen: OrderedDict[str, tuple[float, int, int]] = OrderedDict()

    def warning(self, key: str, message: str, *args: object) -> None:
        """``logger.warning(message, *args)`` unless ``key`` logged ``per_minute`` lines in
        the last minute; the first line after a quiet minute says how many were left out."""
        now = self._clock()
        start, written, dropped = self._seen.pop(key, (now, 0, 0))
        if now - start >= 60:
            if dropped:
                self._log.warning("%s: %d similar lines left out", key, dropped)
            start, written, dropped = now, 0, 0
        if written < self.per_minute:
            self._log.warning(message, *args)
            written += 1
        else:
            dropped += 1
        self._seen[key] = (start, written, dropped)
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
