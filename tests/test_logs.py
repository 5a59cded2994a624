"""cli/logs.py: one line per event in logfmt or JSON, exceptions kept on that line."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from cachewatch.cli import logs


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """The root logger writing to a buffer through logs.setup_logging's handler."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buffer = io.StringIO()
    yield buffer
    root.handlers[:], level = saved
    root.setLevel(level)


def _lines(buffer: io.StringIO) -> list[str]:
    return buffer.getvalue().splitlines()


def _setup(buffer: io.StringIO, level: str, fmt: str) -> None:
    logs.setup_logging(level, fmt)
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)


def _fail() -> None:
    raise ValueError("bad value\nsecond line")


def test_logfmt_line_has_time_level_logger_and_message(stream: io.StringIO) -> None:
    _setup(stream, "info", "logfmt")
    logging.getLogger("cachewatch.test").warning("redis %s is down", "127.0.0.1:6379")
    (line,) = _lines(stream)
    assert re.fullmatch(
        r"ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=warn logger=cachewatch\.test "
        r'msg="redis 127\.0\.0\.1:6379 is down"',
        line,
    ), line


def test_logfmt_quotes_and_escapes_so_one_event_stays_one_line(stream: io.StringIO) -> None:
    _setup(stream, "info", "logfmt")
    logging.getLogger("t").info('a "quoted"\nsecond\rthird \\ end')
    (line,) = _lines(stream)
    assert line.endswith('msg="a \\"quoted\\"\\nsecond\\rthird \\\\ end"')
    assert "\r" not in stream.getvalue()


def test_level_filters_events_below_it(stream: io.StringIO) -> None:
    _setup(stream, "warn", "logfmt")
    log = logging.getLogger("t")
    log.info("hidden")
    log.debug("hidden too")
    log.error("shown")
    assert [line.split("level=")[1].split()[0] for line in _lines(stream)] == ["error"]


def test_an_exception_is_kept_on_the_event_line(stream: io.StringIO) -> None:
    _setup(stream, "info", "logfmt")
    try:
        _fail()
    except ValueError:
        logging.getLogger("t").error("internal error serving %s", "/metrics", exc_info=True)
    (line,) = _lines(stream)
    error = line.split(" err=", 1)[1]
    assert error.startswith('"Traceback (most recent call last):\\n')
    assert "in _fail\\n" in error
    assert error.endswith('ValueError: bad value\\nsecond line"')


def test_json_events_parse_and_carry_the_exception(stream: io.StringIO) -> None:
    _setup(stream, "debug", "json")
    log = logging.getLogger("cachewatch.json")
    log.debug("plain")
    try:
        _fail()
    except ValueError:
        log.warning("step failed", exc_info=True)
    first, second = (json.loads(line) for line in _lines(stream))
    assert first.keys() == {"ts", "level", "logger", "msg"}
    assert (first["level"], first["logger"], first["msg"]) == ("debug", "cachewatch.json", "plain")
    assert isinstance(first["ts"], float)
    assert second["level"] == "warn"
    assert second["err"].startswith("Traceback (most recent call last):\n")
    assert second["err"].endswith("ValueError: bad value\nsecond line")
