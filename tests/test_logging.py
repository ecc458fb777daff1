"""pgsse.logging.JsonFormatter: one JSON object per line, extra= fields included."""

from __future__ import annotations

import json
import logging

from pgsse.logging import JsonFormatter


def record(**extra: object) -> logging.LogRecord:
    logger = logging.getLogger("pgsse.stream")
    return logger.makeRecord(
        "pgsse.stream",
        logging.INFO,
        __file__,
        1,
        "stream closed over %s",
        ("room:a",),
        None,
        extra=extra,
    )


def test_a_line_is_json_with_the_message_and_every_extra_field() -> None:
    line = JsonFormatter().format(
        record(channels=("room:a", "typing:a"), client="user:7", reason="shutdown", events=3)
    )
    assert "\n" not in line
    data = json.loads(line)
    assert data["message"] == "stream closed over room:a"
    assert data["level"] == "INFO"
    assert data["logger"] == "pgsse.stream"
    assert data["time"].endswith("+00:00")
    assert data["channels"] == ["room:a", "typing:a"]
    assert (data["client"], data["reason"], data["events"]) == ("user:7", "shutdown", 3)
    assert "args" not in data  # the record's own fields stay out
    assert "msg" not in data


def test_exceptions_and_values_json_has_no_type_for_are_text() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        failed = record(error=ValueError("x"))
        failed.exc_info = sys.exc_info()
    data = json.loads(JsonFormatter().format(failed))
    assert data["error"] == "x"
    assert "RuntimeError: boom" in data["exception"]
