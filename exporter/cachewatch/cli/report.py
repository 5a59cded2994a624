"""``cachewatch report``: fetch /report from a running cachewatch and print it as a table
that fits the terminal (``$COLUMNS``, else the terminal's width; unlimited into a pipe)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import urlsplit

import requests

from .. import units
from ..config import ConfigError
from ..secret import mask_url_passwords
from .errors import UserFacingError


def report_url(base: str) -> str:
    """``base`` with /report appended unless it already names it; a usage error if not HTTP."""
    parts = urlsplit(base.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        shown = mask_url_passwords(base)
        raise ConfigError(f"--url: invalid URL {shown!r} (use e.g. http://localhost:10287)")
    path = parts.path.rstrip("/")
    if not path.endswith("/report"):
        path += "/report"
    return parts._replace(path=path, query="", fragment="").geturl()


def fetch_report(base: str, timeout: float = 10.0) -> dict[str, Any]:
    target = report_url(base)
    url = mask_url_passwords(target)  # what messages show: never the password of the URL
    try:
        response = requests.get(target, timeout=timeout)
    except requests.ConnectionError:
        raise UserFacingError(f"cannot reach cachewatch at {url}: connection refused") from None
    except requests.Timeout:
        raise UserFacingError(f"cannot reach cachewatch at {url}: timed out") from None
    except requests.RequestException as exc:
        raise UserFacingError(f"cannot reach cachewatch at {url}: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise UserFacingError(f"{url} answered HTTP {response.status_code}, not a report")
    try:
        body = response.json()
    except ValueError:
        raise UserFacingError(f"{url} did not answer with a cachewatch report (not JSON)") from None
    if not isinstance(body, dict) or "caches" not in body:
        raise UserFacingError(f"{url} did not answer with a cachewatch report")
    return body


def _entries(cache: dict[str, Any]) -> str:
    entries = cache["entries"]
    shown = "-" if entries["size"] is None else str(entries["size"])
    return shown + (f"/{entries['max_entries']}" if entries["max_entries"] else "")


def _memory(cache: dict[str, Any]) -> str:
    memory = cache["memory"]
    shown = units.size(memory["bytes"], compact=True)
    limit = memory["limit_bytes"]
    return shown + (f"/{units.size(limit, compact=True)}" if limit else "")


def _p99(cache: dict[str, Any]) -> str:
    return units.duration(max(cache["latency_p99_seconds"].values(), default=None))


def _points(ratio: Any) -> str:
    return "-" if ratio is None else f"{100 * ratio:.1f}"


@dataclass(frozen=True)
class Column:
    """One column of the table; the lower ``keep``, the later it is left out to fit."""

    name: str
    keep: int
    cell: Callable[[dict[str, Any]], str]
    left: bool = False


COLUMNS = (
    Column("CACHE", 99, lambda c: str(c["cache"]), left=True),
    Column("REQ/S", 90, lambda c: units.number(c["requests"]["per_second"])),
    Column("HIT%", 98, lambda c: _points(c["hit_ratio"]["recent"])),
    Column("HIT% WIN", 40, lambda c: _points(c["hit_ratio"]["trend_window"])),
    Column("P99", 60, _p99),
    Column("ERR%", 70, lambda c: _points(c["errors"]["ratio"])),
    Column("ENTRIES", 80, _entries),
    Column("MEMORY", 85, _memory),
    Column("EVICT/PUT", 50, lambda c: units.number(c["evictions"]["per_put"], 2)),
    Column("EXPIRED", 20, lambda c: str(c["expirations"]["total"])),
    Column("CLEAN/H", 10, lambda c: units.number(c["cleanups"]["per_hour"])),
    Column("MEM/S", 30, lambda c: units.size(c["trends"]["memory_growth_bytes_per_second"],
                                             compact=True)),
    Column("FULL IN", 75, lambda c: units.duration(c["forecast"]["memory_full_seconds"])),
    Column("STATUS", 95, lambda c: str(c["status"]), left=True),
)  # fmt: skip
GAP = "  "
MIN_CACHE_WIDTH = 8
MIN_TABLE_COLUMNS = 3
"""CACHE, HIT% and STATUS: narrower than these, each cache becomes a block of lines."""


def terminal_width(stream: TextIO) -> int | None:
    """``$COLUMNS``, else the terminal's width; None (no limit) when writing into a pipe."""
    given = os.environ.get("COLUMNS", "")
    if given.isdigit() and int(given) > 0:
        return int(given)
    try:
        if stream.isatty():
            return shutil.get_terminal_size().columns
    except (AttributeError, ValueError, OSError):
        pass
    return None


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def _fit(columns: list[Column], rows: list[list[str]], width: int | None) -> list[int] | None:
    """Column widths that fit ``width``, the cache names shortened to at most a third of it
    (and further, to ``MIN_CACHE_WIDTH``, only when nothing else is left to drop); None when
    these columns do not fit."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    if width is None:
        return widths
    widths[0] = min(widths[0], max(MIN_CACHE_WIDTH, width // 3))
    spare = width - (sum(widths) + len(GAP) * (len(columns) - 1))
    if spare >= 0:
        return widths
    if len(columns) == MIN_TABLE_COLUMNS and widths[0] + spare >= MIN_CACHE_WIDTH:
        widths[0] += spare
        return widths
    return None


def _table(caches: Sequence[dict[str, Any]], width: int | None) -> list[str] | None:
    """The table, leaving out the least needed columns until it fits ``width``; None when
    even the narrowest table does not fit."""
    columns = list(COLUMNS)
    while True:
        rows = [[col.name for col in columns]] + [[col.cell(c) for col in columns] for c in caches]
        widths = _fit(columns, rows, width)
        if widths is not None:
            break
        if len(columns) == MIN_TABLE_COLUMNS:
            return None
        columns.remove(min(columns[1:], key=lambda col: col.keep))
    lines = []
    for row in rows:
        cells = [
            _shorten(cell, w).ljust(w) if col.left else cell.rjust(w)
            for cell, w, col in zip(row, widths, columns, strict=True)
        ]
        lines.append(GAP.join(cells).rstrip())
    left_out = [col.name for col in COLUMNS if col not in columns]
    if left_out:
        lines += _wrap(
            f"({len(left_out)} columns left out to fit {width} columns: "
            f"{', '.join(left_out)}; --json has everything)",
            width,
        )
    return lines


def _blocks(caches: Sequence[dict[str, Any]], width: int) -> list[str]:
    """One block of ``NAME value`` lines per cache, for terminals too narrow for a table
    (the value under its name when both do not fit on one line)."""
    lines: list[str] = []
    label = max(len(col.name) for col in COLUMNS[1:])
    for cache in caches:
        lines.append(_shorten(str(cache["cache"]), width))
        for col in COLUMNS[1:]:
            line = f"  {col.name.ljust(label)} {col.cell(cache)}"
            if len(line) > width:
                lines += [f"  {col.name}", "    " + _shorten(col.cell(cache), width - 4)]
            else:
                lines.append(line)
    return lines


def _wrap(text: str, width: int | None, indent: str = "") -> list[str]:
    if width is None:
        return [text]
    return textwrap.wrap(text, width, subsequent_indent=indent + "  ", break_on_hyphens=False) or [
        text
    ]


def render_table(report: dict[str, Any], url: str = "", width: int | None = None) -> str:
    """The report as text, fitting ``width`` columns (None: no limit)."""
    caches = report["caches"]
    firing = report.get("firing_alerts", 0)
    lines = _wrap(
        f"cachewatch report{' of ' + url if url else ''}: {len(caches)} caches, "
        f"{firing} firing alert{'s' if firing != 1 else ''}",
        width,
    )
    for src in report.get("sources", []):
        state = "up" if src["up"] else f"DOWN ({src.get('error') or 'unknown error'})"
        lines += _wrap(f"source {src['source']}: {state}", width)
    memory = report.get("memory")
    if memory:
        share = memory.get("in_process_cache_share")
        lines += _wrap(
            f"memory: process {units.size(memory['process_rss_bytes'], compact=True)}, caches "
            f"{units.size(memory['cache_bytes'], compact=True)}"
            + ("" if share is None else f" ({units.percent(share)} of the process)")
            + f", host available {units.size(memory['host_available_bytes'], compact=True)} "
            f"of {units.size(memory['host_total_bytes'], compact=True)}",
            width,
        )
    lines.append("")
    if not caches:
        lines.append("no caches yet")
        return "\n".join(lines) + "\n"
    table = _table(caches, width)
    if table is not None:
        lines += table
    elif width is not None:  # a table always fits without a limit
        lines += _blocks(caches, width)
    for cache in caches:
        if not cache["alerts"] and not cache["recommendations"]:
            continue
        lines.append("")
        lines += _wrap(f"{cache['cache']} [{cache['status']}]", width)
        for alert in cache["alerts"]:
            text = f"  alert  {alert['alertname']} {alert['state']}: {alert['summary']}"
            lines += _wrap(text, width, "  ")
        for advice in cache["recommendations"]:
            lines += _wrap(f"  advice {advice['message']}", width, "  ")
    statistics = report.get("alert_statistics") or []
    if statistics:
        lines += ["", *_wrap("alerts since start:", width)]
        for record in statistics:
            lines += _wrap("  " + statistics_line(record, report.get("generated_at")), width, "  ")
    return "\n".join(lines) + "\n"


def statistics_line(record: dict[str, Any], now: float | None) -> str:
    """One alert's history for one cache, in words."""

    def ago(at: float | None) -> str:
        if at is None:
            return "never"
        return "just now" if now is None else f"{units.duration(max(0.0, now - at))} ago"

    fired = record["fired"]
    text = (
        f"{record['alertname']} {record['cache']}: fired {fired} time{'s' if fired != 1 else ''}"
        f", {units.duration(record['firing_seconds'])} firing in all"
    )
    mean = record["mean_time_to_resolve_seconds"]
    if mean is not None:
        text += f", resolved after {units.duration(mean)} on average"
    text += (
        f"; last fired {ago(record['last_fired'])}, last resolved {ago(record['last_resolved'])}"
    )
    return text + (" (firing now)" if record["firing_now"] else "")


def run_report(url: str, as_json: bool) -> int:
    report = fetch_report(url)
    if as_json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        shown = mask_url_passwords(report_url(url))
        print(render_table(report, shown, terminal_width(sys.stdout)), end="")
    return 0
