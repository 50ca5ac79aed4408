"""servicekit's log formats: one record, one line, whatever the message holds."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from servicekit import configure_logging, log_format


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


def _records(fmt: str) -> list[str]:
    stream = io.StringIO()
    configure_logging(fmt, stream=stream)
    log = logging.getLogger("svc.test")
    log.warning("line one\nERROR svc.test: forged", extra={"tenant_id": "t-1", "source": "guest"})
    try:
        raise ValueError("boom\nINFO svc.test: forged from an exception")
    except ValueError:
        log.exception("failed")
    return stream.getvalue().splitlines()


@pytest.mark.usefixtures("restore_root")
def test_json_format_is_one_object_per_record_with_its_fields() -> None:
    lines = _records("json")
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "line one\nERROR svc.test: forged"
    assert (first["level"], first["logger"], first["tenant_id"], first["source"]) == (
        "WARNING", "svc.test", "t-1", "guest")
    assert second["message"] == "failed"
    assert "ValueError: boom" in second["exc_info"]


@pytest.mark.usefixtures("restore_root")
def test_text_format_escapes_messages_and_tracebacks() -> None:
    lines = _records("text")
    assert len(lines) == 2
    assert lines[0].endswith("WARNING svc.test: line one\\nERROR svc.test: forged [source=guest tenant_id=t-1]")
    assert "ValueError: boom\\nINFO svc.test: forged" in lines[1]


def test_log_format_setting() -> None:
    assert log_format(" JSON ") == "json"
    assert log_format("text") == "text"
    with pytest.raises(ValueError, match="text, json"):
        log_format("xml")
