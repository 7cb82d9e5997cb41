"""The signaling core: wire shapes, the switchboard and its stores. No sockets, no HTTP."""

from __future__ import annotations

from callbox.signaling.model import (
    JSON,
    Auth,
    Candidate,
    Description,
    ErrorCode,
    Limits,
    Offer,
    Session,
    SignalingError,
    StoreUnavailable,
    parse_auth,
)
from callbox.signaling.store import MemoryStore, Store
from callbox.signaling.switchboard import Delivery, Outcome, Switchboard

__all__ = [
    "JSON",
    "Auth",
    "Candidate",
    "Delivery",
    "Description",
    "ErrorCode",
    "Limits",
    "MemoryStore",
    "Offer",
    "Outcome",
    "Session",
    "SignalingError",
    "Store",
    "StoreUnavailable",
    "Switchboard",
    "parse_auth",
]
