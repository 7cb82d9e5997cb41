"""What each client has not taken yet, per socket and per address, at O(1) per send.

Measuring a socket's unsent bytes is costly (asyncio sums its write buffer's chunks, the
kernel's queue is a system call), and a busy server sends to many sockets whose buffers are
not empty. So the ledger keeps, per socket, an upper bound: the bytes last measured plus
everything handed to it since (data only ever drains, so the real figure is at most that),
and the same sum per address. Only when an upper bound passes its budget is the socket (or
every socket of the address) measured again; only when the fresh measure is over too is the
send refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Entry:
    address: str
    measured: int = 0
    added: int = 0

    @property
    def bound(self) -> int:
        return self.measured + self.added


class Ledger:
    def __init__(
        self, socket_budget: int, address_budget: int, measure: Callable[[str], int]
    ) -> None:
        self.socket_budget = socket_budget
        self.address_budget = address_budget
        self._measure = measure
        self._entries: dict[str, _Entry] = {}
        self._by_address: dict[str, set[str]] = {}
        self._address_bound: dict[str, int] = {}

    def add(self, key: str, address: str) -> None:
        self._entries[key] = _Entry(address)
        self._by_address.setdefault(address, set()).add(key)

    def remove(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        keys = self._by_address.get(entry.address, set())
        keys.discard(key)
        if keys:
            self._address_bound[entry.address] -= entry.bound
        else:
            self._by_address.pop(entry.address, None)
            self._address_bound.pop(entry.address, None)

    def fits(self, key: str, size: int) -> bool:
        """Whether ``size`` more bytes would be allowed now (nothing is counted)."""
        entry = self._entries.get(key)
        if entry is None:
            return True
        if entry.bound + size <= self.socket_budget and (
            self._address_bound.get(entry.address, 0) + size <= self.address_budget
        ):
            return True
        if not self.allow(key, size):
            return False
        entry.added -= size
        self._address_bound[entry.address] -= size
        return True

    def allow(self, key: str, size: int) -> bool:
        """Whether ``size`` more bytes may go to socket ``key`` (they are then counted);
        False when the socket, or its address, would pass its budget even measured afresh."""
        return not self.allow_each([key], size)

    def allow_each(self, keys: list[str], size: int) -> list[str]:
        """:meth:`allow` for each of ``keys`` in turn (a broadcast's recipients); the keys it
        refused. The common case, within both budgets, is counted here in the loop."""
        refused: list[str] = []
        entries, on_address = self._entries, self._address_bound
        socket_budget, address_budget = self.socket_budget, self.address_budget
        for key in keys:
            entry = entries.get(key)
            if entry is None:
                continue
            added = entry.added + size
            address = entry.address
            total = on_address.get(address, 0) + size
            if entry.measured + added <= socket_budget and total <= address_budget:
                entry.added = added
                on_address[address] = total
            elif not self._allow_measured(entry, key, size):
                refused.append(key)
        return refused

    def _allow_measured(self, entry: _Entry, key: str, size: int) -> bool:
        """:meth:`allow` past an upper bound: the socket (or its address) measured afresh."""
        address = entry.address
        if entry.bound + size > self.socket_budget:
            self._remeasure(entry, key)
            if entry.bound + size > self.socket_budget:
                return False
        if self._address_bound.get(address, 0) + size > self.address_budget:
            for other in self._by_address.get(address, ()):
                self._remeasure(self._entries[other], other)
            if self._address_bound.get(address, 0) + size > self.address_budget:
                return False
        entry.added += size
        self._address_bound[address] = self._address_bound.get(address, 0) + size
        return True

    def unsent(self, key: str) -> int:
        """The socket's upper bound now (for tests and logs)."""
        entry = self._entries.get(key)
        return entry.bound if entry else 0

    def _remeasure(self, entry: _Entry, key: str) -> None:
        before = entry.bound
        entry.measured, entry.added = self._measure(key), 0
        self._address_bound[entry.address] += entry.bound - before
