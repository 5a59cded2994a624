"""Logging in logfmt or JSON, one line per event, as Prometheus components log. An event
logged with its exception (``exc_info``) carries it in ``err``: the traceback on the same
line, its newlines escaped, so that a log shipper keeps it with the event."""

from __future__ import annotations

import json
import logging
import sys
import time

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "error": logging.ERROR}  # fmt: skip


def _logfmt_value(value: str) -> str:
    if value and all(c.isalnum() or c in "-._/:@" for c in value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r") + '"'


def _level(record: logging.LogRecord) -> str:
    return record.levelname.lower().replace("warning", "warn")


def _error(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    """The record's exception with its traceback (formatted once per record), or None."""
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    return record.exc_text or None


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        fields = [
            ("ts", f"{stamp}.{int(record.msecs):03d}Z"),
            ("level", _level(record)),
            ("logger", record.name),
            ("msg", record.getMessage()),
        ]
        error = _error(self, record)
        if error is not None:
            fields.append(("err", error))
        return " ".join(f"{key}={_logfmt_value(value)}" for key, value in fields)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, float | str] = {
            "ts": record.created,
            "level": _level(record),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        error = _error(self, record)
        if error is not None:
            event["err"] = error
        return json.dumps(event)


def setup_logging(level: str = "info", fmt: str = "logfmt") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS.get(level, logging.INFO))
