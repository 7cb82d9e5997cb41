"""How packets are encoded: python-socketio's own extension points, made faster.

- :class:`JsonPacket` (``serializer=``): callbox speaks JSON only (binary packets are refused
  at their header, server/sio.py), so the scan of every payload for ``bytes`` that
  python-socketio's packet makes before encoding is turned off (``uses_binary_events``).
- :data:`json` (``json=``): orjson where it can, the standard library where it cannot (a
  lone surrogate in a client's string, an integer past 64 bits): the same JSON either way.
"""

from __future__ import annotations

import json as _stdlib
from typing import Any

import orjson
import socketio


class JsonPacket(socketio.packet.Packet):  # type: ignore[misc]
    uses_binary_events = False


class _Codec:
    """The two functions python-socketio and python-engineio call (``json.dumps`` with
    ``separators`` and ``json.loads``)."""

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        try:
            return orjson.dumps(obj).decode()
        except TypeError:
            return _stdlib.dumps(obj, separators=(",", ":"))

    @staticmethod
    def loads(text: str | bytes, **kwargs: Any) -> Any:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return _stdlib.loads(text)


json = _Codec()
