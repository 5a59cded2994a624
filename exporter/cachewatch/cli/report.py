"""``cachewatch report``: fetch /report from a running cachewatch and print it as a table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import requests

from ..config import ConfigError
from ..secret import mask_url_passwords
from .errors import UserFacingError

MB = 1024 * 1024
COLUMNS = (
    ("CACHE", "<"), ("REQ/S", ">"), ("HIT%", ">"), ("HIT% WIN", ">"), ("P99", ">"),
    ("ERR%", ">"), ("ENTRIES", ">"), ("MEMORY", ">"), ("EVICT/PUT", ">"), ("EXPIRED", ">"),
    ("CLEAN/H", ">"), ("MEM/S", ">"), ("FULL IN", ">"), ("STATUS", "<"),
)  # fmt: skip


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


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _num(value: Any, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _seconds(value: Any) -> str:
    if value is None:
        return "-"
    if value < 0.001:
        return f"{value * 1e6:.0f}us"
    if value < 1:
        return f"{value * 1e3:.1f}ms"
    if value < 120:
        return f"{value:.0f}s"
    if value < 7200:
        return f"{value / 60:.0f}m"
    return f"{value / 3600:.1f}h"


def _bytes(value: Any) -> str:
    if value is None:
        return "-"
    if abs(value) >= MB:
        return f"{value / MB:.1f}M"
    if abs(value) >= 1024:
        return f"{value / 1024:.1f}K"
    return f"{value:.0f}B"


def _row(cache: dict[str, Any]) -> list[str]:
    p99 = max(cache["latency_p99_seconds"].values(), default=None)
    memory = cache["memory"]
    entries = cache["entries"]
    size = "-" if entries["size"] is None else str(entries["size"])
    if entries["max_entries"]:
        size += f"/{entries['max_entries']}"
    mem = _bytes(memory["bytes"])
    if memory["limit_bytes"]:
        mem += f"/{_bytes(memory['limit_bytes'])}"
    return [
        cache["cache"],
        _num(cache["requests"]["per_second"]),
        _pct(cache["hit_ratio"]["recent"]),
        _pct(cache["hit_ratio"]["trend_window"]),
        _seconds(p99),
        _pct(cache["errors"]["ratio"]),
        size,
        mem,
        _num(cache["evictions"]["per_put"], 2),
        str(cache["expirations"]["total"]),
        _num(cache["cleanups"]["per_hour"]),
        _bytes(cache["trends"]["memory_growth_bytes_per_second"]),
        _seconds(cache["forecast"]["memory_full_seconds"]),
        cache["status"],
    ]


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    header = [name for name, _ in COLUMNS]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(COLUMNS))]
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.ljust(w) if align == "<" else cell.rjust(w)
            for cell, w, (_, align) in zip(row, widths, COLUMNS, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def render_table(report: dict[str, Any], url: str = "") -> str:
    caches = report["caches"]
    firing = report.get("firing_alerts", 0)
    lines = [
        f"cachewatch report{' of ' + url if url else ''}: {len(caches)} caches, "
        f"{firing} firing alert{'s' if firing != 1 else ''}"
    ]
    for src in report.get("sources", []):
        state = "up" if src["up"] else f"DOWN ({src.get('error') or 'unknown error'})"
        lines.append(f"source {src['source']}: {state}")
    memory = report.get("memory")
    if memory:
        share = memory.get("in_process_cache_share")
        lines.append(
            f"memory: process {_bytes(memory['process_rss_bytes'])}, caches "
            f"{_bytes(memory['cache_bytes'])}"
            + ("" if share is None else f" ({100 * share:.1f}% of the process)")
            + f", host available {_bytes(memory['host_available_bytes'])} of "
            f"{_bytes(memory['host_total_bytes'])}"
        )
    lines.append("")
    if not caches:
        lines.append("no caches seen yet")
        return "\n".join(lines) + "\n"
    lines += _table([_row(c) for c in caches])
    for cache in caches:
        if not cache["alerts"] and not cache["recommendations"]:
            continue
        lines.append("")
        lines.append(f"{cache['cache']} [{cache['status']}]")
        for alert in cache["alerts"]:
            severity = f" ({alert['severity']})" if alert["severity"] else ""
            lines.append(
                f"  alert  {alert['alertname']} {alert['state']}{severity}: {alert['summary']}"
            )
        for advice in cache["recommendations"]:
            lines.append(f"  advice {advice['message']}")
    return "\n".join(lines) + "\n"


def run_report(url: str, as_json: bool) -> int:
    report = fetch_report(url)
    if as_json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(render_table(report, mask_url_passwords(report_url(url))), end="")
    return 0
