"""/report for a browser: every cache's statistics, trends, alerts and advice with its
evidence, the readable report that ``cachewatch report`` prints in a terminal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import units
from .html import Page, definitions, e, state, table
from .sparkline import sparkline


def _value(value: Any, show: Any = str) -> str:
    return units.NONE if value is None else e(show(value))


def _cache(cache: Mapping[str, Any], window: str) -> str:
    name = cache["cache"]
    requests, memory, entries = cache["requests"], cache["memory"], cache["entries"]
    history = cache.get("history", {})
    latency = ", ".join(
        f"{op} {units.duration(seconds)}"
        for op, seconds in sorted(cache["latency_p99_seconds"].items())
    )
    errors = cache["errors"]
    by_operation = ", ".join(f"{k}: {v}" for k, v in errors["by_operation"].items())
    cleanups = cache["cleanups"]
    usual = _value(cleanups["usual_interval_seconds"], units.duration)
    trends = cache["trends"]
    rows = [
        ("source", e(cache["source"])),
        ("requests", f"{requests['gets']:,} gets ({requests['hits']:,} hits, "
                     f"{requests['misses']:,} misses), {requests['puts']:,} puts, "
                     f"{requests['removals']:,} removals; "
                     f"{_value(requests['per_second'], units.number)}/s"),
        ("hit ratio", f"{_value(cache['hit_ratio']['recent'], units.percent)} recent, "
                      f"{_value(cache['hit_ratio']['trend_window'], units.percent)} over {window}"),
        ("p99 latency", e(latency) or units.NONE),
        ("errors", f"{errors['total']:,} ({_value(errors['ratio'], units.percent)} recent)"
                   + (f": {e(by_operation)}" if by_operation else "")),
        ("entries", _value(entries["size"], lambda n: f"{n:,}")
                    + (f" of {entries['max_entries']:,}" if entries["max_entries"] else "")),
        ("memory", _value(memory["bytes"], units.size)
                   + (f" of {e(units.size(memory['limit_bytes']))} "
                      f"({_value(memory['limit_ratio'], units.percent)})"
                      if memory["limit_bytes"] else "")),
        ("evictions", f"{cache['evictions']['total']:,} "
                      f"({_value(cache['evictions']['per_put'], lambda v: f'{v:.2f}')} per put)"),
        ("expirations", f"{cache['expirations']['total']:,}"),
        ("cleanups", f"{cleanups['total']:,} ({_value(cleanups['per_hour'], units.number)}/h; "
                     f"last {_value(cleanups['seconds_since_last'], units.duration)} ago, "
                     f"usually every {usual})"),
        ("trends", f"memory {_value(trends['memory_growth_bytes_per_second'], units.size)}/s, "
                   f"entries {_value(trends['size_growth_per_second'], units.number)}/s, "
                   f"hit ratio "
                   + _value(trends["hit_ratio_points_per_hour"], lambda v: f"{v:+.1f} pts/h")),
        ("memory full in", _value(cache["forecast"]["memory_full_seconds"], units.duration)),
    ]  # fmt: skip
    lines = [
        sparkline(history.get("hit_ratio", []), kind="ratio", low=0.0, high=1.0,
                  label=f"hit ratio over the last {window}"),
        sparkline(history.get("memory_bytes", []), kind="memory", low=0.0,
                  high=memory["limit_bytes"], label=f"memory over the last {window}"),
    ]  # fmt: skip
    parts = [
        f'<section class="card" id="cache-{e(name)}"><h2>{e(name)} {state(cache["status"])}'
        f'<span class="metric">{"".join(lines)}</span></h2>',
        definitions(rows),
    ]
    alerts = [
        [e(a["alertname"]), state(a["state"]), f'<span class="evidence">{e(a["summary"])}</span>']
        for a in cache["alerts"]
    ]
    parts.append(table(("Alert", "State", "Evidence"), alerts, empty="No alert."))
    if cache["recommendations"]:
        items = []
        for advice in cache["recommendations"]:
            evidence = ", ".join(f"{k}={v:g}" for k, v in sorted(advice["evidence"].items()))
            items.append(
                f"<li>{e(advice['message'])} "
                f'<span class="evidence muted">({e(evidence)})</span></li>'
            )
        parts.append(f'<ul class="advice">{"".join(items)}</ul>')
    parts.append("</section>")
    return "".join(parts)


def render(report: Mapping[str, Any]) -> Page:
    caches = report["caches"]
    window = units.duration(report["settings"]["trend_window_seconds"])
    sources = ", ".join(
        f"{s['source']} {'up' if s['up'] else 'down: ' + str(s.get('error') or '?')}"
        for s in report["sources"]
    )
    memory = report.get("memory")
    head = [("sources", e(sources) or units.NONE), ("firing alerts", str(report["firing_alerts"]))]
    if memory:
        head.append(
            ("memory", f"process {e(units.size(memory['process_rss_bytes']))}, caches "
                       f"{e(units.size(memory['cache_bytes']))}, host available "
                       f"{e(units.size(memory['host_available_bytes']))} of "
                       f"{e(units.size(memory['host_total_bytes']))}")
        )  # fmt: skip
    body = [f"<h2>Report: {len(caches)} caches</h2>", definitions(head)]
    body += [_cache(cache, window) for cache in caches] or ['<p class="empty">No cache yet.</p>']
    body.append('<p class="muted">The same as JSON: <code>curl …/report</code>.</p>')
    return f"cachewatch report: {len(caches)} caches", "".join(body)
