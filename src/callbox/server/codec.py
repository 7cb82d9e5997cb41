"""How packets are encoded: python-socketio's own extension points, made faster.

- :class:`JsonPacket` (``serializer=``): callbox speaks JSON only (binary packets are refused
  at their header, server/sio.py), so the scan of every payload for ``bytes`` that
  python-socketio's packet makes before encoding is turned off (``uses_binary_events``).
- :data:`json` (``json=``): :mod:`callbox.jsontext` (orjson, with the standard library
  for what orjson cannot encode or decode).
"""

from __future__ import annotations

from typing import Any

import socketio

from callbox import jsontext


class JsonPacket(socketio.packet.Packet):  # type: ignore[misc]
    uses_binary_events = False


class _Codec:
    """The two functions python-socketio and python-engineio call (``json.dumps`` with
    ``separators`` and ``json.loads``)."""

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        return jsontext.dumps(obj)

    @staticmethod
    def loads(text: str | bytes, **kwargs: Any) -> Any:
        return jsontext.loads(text)


json = _Codec()
