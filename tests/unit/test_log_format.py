"""`--log-format json` and secret masking (callbox/logs.py), on an in-memory stream."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from callbox.logs import MASK, setup_logging


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    yield out
    setup_logging(0)  # leave a plain handler on stderr, as main() would


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_json_lines_carry_time_level_logger_message_and_ids(stream: io.StringIO) -> None:
    setup_logging(1, "json", stream)
    log = logging.getLogger("callbox.test")
    log.info("sid=%s joined room=%s as %r", "Zx8_-a1", "lobby", 'ålice "quoted"\nnewline')
    log.warning("session=%s offer_id=%s ended", "S1", "O1", extra={"room": "r2"})
    log.debug("not at -v")
    first, second = lines(stream)
    assert first["level"] == "INFO" and first["logger"] == "callbox.test"
    assert first["message"] == "sid=Zx8_-a1 joined room=lobby as 'ålice \"quoted\"\\nnewline'"
    assert (first["sid"], first["room"]) == ("Zx8_-a1", "lobby")
    assert str(first["time"]).endswith("+00:00") and "T" in str(first["time"])
    assert (second["session"], second["offer"], second["room"]) == ("S1", "O1", "r2")
    assert "sid" not in second


def test_secrets_are_masked_in_messages_and_tracebacks(stream: io.StringIO) -> None:
    secrets = setup_logging(2, "json", stream)
    secrets.add("north-wind-secret", None, "abc")  # too short to mask: not a secret
    log = logging.getLogger("callbox.test")
    try:
        raise ValueError("bad key north-wind-secret")
    except ValueError:
        log.exception("failed with %s", "north-wind-secret")
    (line,) = lines(stream)
    assert "north-wind-secret" not in stream.getvalue()
    assert line["message"] == f"failed with {MASK}"
    assert f"ValueError: bad key {MASK}" in str(line["exc"])


def test_text_format_masks_too(stream: io.StringIO) -> None:
    secrets = setup_logging(0, "text", stream)
    secrets.add("north-wind-secret")
    logging.getLogger("callbox.test").warning("password north-wind-secret refused")
    text = stream.getvalue()
    assert text.endswith(f"WARNING callbox.test: password {MASK} refused\n")
    assert len(logging.getLogger().handlers) >= 1
