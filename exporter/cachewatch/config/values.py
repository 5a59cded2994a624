"""Value parsers: what a flag, an environment variable or a YAML scalar may say, and the one
spelling of a duration that every generated file and every message uses.

Parsers take strings (YAML scalars are ``str()``-ed first) and raise ``ValueError`` with a
one-line reason; the loader prefixes the setting's name.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from ..secret import mask_url_passwords

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def parse_duration(text: str) -> float:
    """Prometheus-style durations (``15s``, ``1h30m``, ``500ms``); a bare number is seconds."""
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        pos, seconds = 0, 0.0
        for match in _DURATION_PART.finditer(value):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
            pos = match.end()
        if pos != len(value) or not value:
            raise ValueError(f"invalid duration {text!r} (use e.g. 15s, 30m, 1h30m)") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"invalid duration {text!r}: must be a finite, non-negative time")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest Prometheus spelling of a duration: ``1800`` -> ``30m``, ``5400`` ->
    ``1h30m``, ``1.5`` -> ``1500ms`` (Prometheus takes whole numbers of one unit each, so a
    fraction of a second is written in milliseconds). Below a millisecond, which Prometheus
    cannot express, the exact value is shown in ``ms`` for messages and ``--help``."""
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s" if seconds == 0 else f"{seconds * 1000:g}ms"
    if millis % 1000:
        return f"{millis}ms"
    rest = millis // 1000
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)


def parse_positive_duration(text: str) -> float:
    seconds = parse_duration(text)
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be greater than zero")
    return seconds


def parse_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"invalid integer {text!r}") from None


def parse_positive_int(text: str) -> int:
    value = parse_int(text)
    if value < 1:
        raise ValueError(f"invalid value {text!r}: must be at least 1")
    return value


def parse_number(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"invalid number {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"invalid number {text!r}: must be finite")
    return value


def parse_non_negative(text: str) -> float:
    value = parse_number(text)
    if value < 0:
        raise ValueError(f"invalid value {text!r}: must not be negative")
    return value


def parse_ratio(text: str) -> float:
    value = parse_number(text)
    if not 0 <= value <= 1:
        raise ValueError(f"invalid ratio {text!r}: must be between 0 and 1")
    return value


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"invalid boolean {text!r} (use true or false)")


def choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in options:
            raise ValueError(f"invalid value {text!r} (one of: {', '.join(options)})")
        return value

    return parse


@dataclass(frozen=True)
class ListenAddress:
    """``host:port``; an empty host means every interface, as in the Prometheus exporters."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def bind_host(self) -> str:
        return self.host or "0.0.0.0"


def parse_listen_address(text: str) -> ListenAddress:
    value = text.strip()
    match = re.fullmatch(r"(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]*)):(\d{1,5})", value)
    if not match:
        raise ValueError(f"invalid listen address {text!r} (use host:port, :port or [::1]:port)")
    host = match.group(1) or match.group(2) or ""
    port = int(match.group(3))
    if port > 65535:
        raise ValueError(f"invalid listen address {text!r}: port must be 0-65535")
    if host and not re.fullmatch(r"[A-Za-z0-9.\-:]+", host):
        raise ValueError(f"invalid listen address {text!r}: bad host name")
    return ListenAddress(host, port)


def parse_census_keys(text: str) -> int:
    value = parse_int(text)
    if value != 0 and not 10 <= value <= 100_000:
        raise ValueError(f"invalid value {text!r}: 0 (off) or 10 to 100000 keys per step")
    return value


def parse_census_samples(text: str) -> int:
    value = parse_int(text)
    if not 0 <= value <= 10_000:
        raise ValueError(f"invalid value {text!r}: 0 to 10000 keys per step")
    return value


def parse_http_url(text: str) -> str:
    """An http(s) base URL such as ``http://alertmanager:9093``."""
    value = text.strip().rstrip("/")
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
        shown = mask_url_passwords(text)
        raise ValueError(f"invalid URL {shown!r} (use e.g. http://localhost:9093)")
    return value


def parse_link_url(text: str) -> str:
    """A URL to link to from a page: http(s), and no credentials in it (a page shows it)."""
    value = parse_http_url(text)
    if "@" in value.split("/")[2]:
        raise ValueError("must not carry credentials (user:password@): a page shows it")
    return value


LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
RESERVED_GROUP_LABELS = frozenset(
    {"cache", "instance", "alertname", "severity", "escalated", "le", "operation", "source"}
)
"""Labels the rules and alerts set or aggregate by themselves: never a group label."""


def parse_group_labels(text: str) -> tuple[str, ...]:
    """Comma-separated Prometheus label names (``cluster,namespace,job``), in order."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise ValueError("needs at least one label name (e.g. job)")
    for name in names:
        if not LABEL_NAME.fullmatch(name) or name.startswith("__"):
            raise ValueError(f"invalid label name {name!r}")
        if name in RESERVED_GROUP_LABELS:
            raise ValueError(f"{name!r} is set by the rules themselves, not a group label")
    if len(set(names)) != len(names):
        raise ValueError(f"a label is named twice in {text!r}")
    return names
