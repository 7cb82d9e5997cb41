"""Log output of the `callbox` command: text or JSON lines, secrets masked in both.

``--log-format json`` writes one JSON object per line: ``time`` (UTC, ISO 8601), ``level``,
``logger``, ``message``, the ids the record carries (``sid``, ``session``, ``room``,
``offer``: from ``extra=`` or from ``key=value`` in the message, which is how callbox's log
lines name them) and ``exc`` (the traceback) when there is one. Either format replaces every
configured secret (passwords, JWT and TURN secrets) with ``***``, in messages and tracebacks
alike, so a secret that slipped into an exception's text still never reaches a log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import TextIO

MASK = "***"
FORMATS = ("text", "json")
ID_KEYS = ("sid", "session", "room", "offer")
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# `sid=abc`, `session=abc`, `room=lobby`, `offer=abc` (also offer_id= / offerId=) in a message
_IDS = re.compile(r"(?<![\w-])(sid|session|room|offer|offer_id|offerId)=([A-Za-z0-9_.:-]{1,128})")
# shorter strings would mask ordinary words; a secret that short is not one anyway
MIN_SECRET_LENGTH = 4


class Secrets:
    """The values no log line may contain."""

    def __init__(self) -> None:
        self._values: list[str] = []

    def add(self, *values: str | None) -> None:
        for value in values:
            if value and len(value) >= MIN_SECRET_LENGTH and value not in self._values:
                self._values.append(value)
        self._values.sort(key=len, reverse=True)  # a secret containing another goes first

    def mask(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, MASK)
        return text


class TextFormatter(logging.Formatter):
    def __init__(self, secrets: Secrets) -> None:
        super().__init__(_TEXT_FORMAT)
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        return self.secrets.mask(super().format(record))


class JsonFormatter(logging.Formatter):
    def __init__(self, secrets: Secrets) -> None:
        super().__init__()
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        message = self.secrets.mask(record.getMessage())
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        line.update(ids_of(record, message))
        if record.exc_info:
            line["exc"] = self.secrets.mask(self.formatException(record.exc_info))
        elif record.stack_info:
            line["exc"] = self.secrets.mask(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=False, default=str)


def ids_of(record: logging.LogRecord, message: str) -> dict[str, str]:
    """The ids a record carries: ``extra={"sid": ...}`` first, then ``key=value`` in its
    message (``offer_id``/``offerId`` reported as ``offer``)."""
    found: dict[str, str] = {}
    for key, value in _IDS.findall(message):
        name = "offer" if key.startswith("offer") else key
        found.setdefault(name, value)
    for key in ID_KEYS:
        value = getattr(record, key, None)
        if value is not None:
            found[key] = str(value)
    return found


class _Handler(logging.StreamHandler[TextIO]):
    """The CLI's handler (told apart from others on the root logger)."""


def setup_logging(
    verbosity: int, log_format: str = "text", stream: TextIO | None = None
) -> Secrets:
    """Configure the root logger (once per process: the CLI's ``main``); returns the
    :class:`Secrets` to register the settings' secrets with."""
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    secrets = Secrets()
    handler = _Handler(stream if stream is not None else sys.stderr)
    formatter = JsonFormatter(secrets) if log_format == "json" else TextFormatter(secrets)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)  # main() called again in the same process (tests)
    root.addHandler(handler)
    root.setLevel(level)
    return secrets
