"""JSON text, compact: orjson where it can, the standard library where it cannot (a lone
surrogate in a client's string, an integer past 64 bits): the same JSON either way, and
always valid UTF-8 (the fallback escapes what orjson refused)."""

from __future__ import annotations

import json as _stdlib
from typing import Any

import orjson


def dumps(obj: Any) -> str:
    try:
        return orjson.dumps(obj).decode()
    except TypeError:
        return _stdlib.dumps(obj, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return _stdlib.loads(text)
