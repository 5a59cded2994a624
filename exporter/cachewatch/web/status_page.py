"""The live status page at ``/``: one row per cache (hit ratio, requests/s, entries, memory,
time to full, state) with sparklines of the trend window, the firing and pending alerts with
their evidence, and the health of each source.

It renders the JSON of /report, /alerts and /health, so the page shows exactly what the API
says. Its one inline script fetches ``?part=live`` (the same HTML, without the frame) every
sample interval and swaps it in: the page follows the exporter without a reload, and reads
whole with scripts off.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import units
from .html import ago, e, layout, pill, state, table
from .sparkline import sparkline

SCRIPT = """"use strict";
(() => {
  const main = document.getElementById("main");
  const stamp = document.getElementById("updated");
  const live = () => main.querySelector("#live");
  const every = () => 1000 * Math.max(1, Number(live()?.dataset.refresh) || 5);
  const refresh = async () => {
    try {
      const response = await fetch("?part=live", {cache: "no-store"});
      if (!response.ok) throw new Error("HTTP " + response.status);
      main.innerHTML = await response.text();
      document.title = live()?.dataset.title || document.title;
      document.body.classList.remove("stale");
      stamp.textContent = "updated " + new Date().toLocaleTimeString();
    } catch (error) {
      document.body.classList.add("stale");
      stamp.textContent = "not updating (" + error.message + "), retrying";
    }
    setTimeout(refresh, every());
  };
  setTimeout(refresh, every());
})();
"""
MIN_REFRESH, MAX_REFRESH = 1.0, 10.0
ALERT_COLUMNS = ("State", "Alert", "Cache", "Severity", "Evidence", "Since")
CACHE_COLUMNS = ("Cache", "State", "Hit ratio", "Requests/s", "Entries / limit",
                 "Memory / limit", "Full in")  # fmt: skip
CACHE_NUMERIC = frozenset(CACHE_COLUMNS[2:])
SOURCE_COLUMNS = ("Source", "State", "Last poll", "Poll took", "Error")
LINK_NAMES = {"grafana": "Grafana", "prometheus": "Prometheus", "alertmanager": "Alertmanager",
              "jaeger": "Jaeger"}  # fmt: skip


def _threshold(alerts: Mapping[str, Any] | None, alertname: str) -> float | None:
    """The warning threshold of ``alertname``, to draw on its sparkline."""
    for definition in (alerts or {}).get("definitions", []):
        if definition["alertname"] == alertname:
            for threshold in definition["thresholds"]:
                if threshold["severity"] == "warning":
                    return float(threshold["value"])
    return None


def _of_limit(value: float | None, limit: float | None, show: Any) -> str:
    if value is None:
        return units.NONE
    text = str(show(value))
    if limit:
        text += f" / {show(limit)} ({units.percent(value / limit, 0)})"
    return e(text)


def _with_line(line: str, value: str) -> str:
    """A value with its sparkline before it (aligned down the column), or alone."""
    return f'<span class="metric">{line}<span>{value}</span></span>' if line else value


def _cache_rows(report: Mapping[str, Any], alerts: Mapping[str, Any] | None) -> list[list[str]]:
    warning = _threshold(alerts, "CacheHitRatioLow")
    window = units.duration(report["settings"]["trend_window_seconds"])
    rows = []
    for cache in report["caches"]:
        name, history = cache["cache"], cache.get("history", {})
        ratio = cache["hit_ratio"]["recent"]
        ratio_line = sparkline(
            history.get("hit_ratio", []), kind="ratio", low=0.0, high=1.0, mark=warning,
            label=f"{name}: hit ratio over the last {window}",
        )  # fmt: skip
        memory, limit = cache["memory"]["bytes"], cache["memory"]["limit_bytes"]
        memory_line = sparkline(
            history.get("memory_bytes", []), kind="memory", low=0.0, high=limit,
            label=f"{name}: memory over the last {window}",
        )  # fmt: skip
        entries = cache["entries"]
        firing = [a for a in cache["alerts"] if a["state"] == "firing"]
        count = f' <span class="muted">{len(firing)} firing</span>' if firing else ""
        status = f"<span>{state(cache['status'])}{count}</span>"
        full = cache["forecast"]["memory_full_seconds"]
        rows.append(
            [
                f'<a href="report#cache-{e(name)}">{e(name)}</a>',
                status,
                _with_line(ratio_line, e(units.percent(ratio))),
                e(units.number(cache["requests"]["per_second"])),
                _of_limit(entries["size"], entries["max_entries"], lambda n: f"{n:,}"),
                _with_line(memory_line, _of_limit(memory, limit, units.size)),
                e(units.duration(full)) if full is not None else units.NONE,
            ]
        )
    return rows


def _alert_rows(alerts: Mapping[str, Any], now: float) -> list[list[str]]:
    summaries = {d["alertname"]: d["summary"] for d in alerts.get("definitions", [])}
    active = [a for a in alerts["alerts"] if a["state"] in ("firing", "pending")]
    active.sort(key=lambda a: (a["state"] != "firing", a["severity"] != "critical",
                               a["alertname"], a["cache"]))  # fmt: skip
    rows = []
    for alert in active:
        since = alert["firing_since"] if alert["state"] == "firing" else alert["pending_since"]
        name = e(alert["alertname"])
        rows.append(
            [
                state(alert["state"]),
                f'<span title="{e(summaries.get(alert["alertname"], ""))}">{name}</span>',
                e(alert["cache"]),
                state(alert["severity"]),
                f'<span class="evidence">{e(alert["summary"])}</span>',
                ago(since, now),
            ]
        )
    return rows


def _source_rows(health: Mapping[str, Any], now: float) -> list[list[str]]:
    rows = []
    for name, check in sorted(health.get("checks", {}).items()):
        if not name.startswith("source:"):
            continue
        rows.append(
            [
                e(name.removeprefix("source:")),
                state("up" if check.get("up") else "down"),
                ago(check.get("last_poll_timestamp"), now),
                e(units.duration(check.get("poll_duration_seconds"))),
                f'<span class="evidence">{e(check.get("error", ""))}</span>',
            ]
        )
    return rows


def refresh_seconds(report: Mapping[str, Any] | None) -> float:
    """Every sample interval (nothing changes in between), within 1 to 10 s."""
    interval = (report or {}).get("settings", {}).get("sample_interval_seconds", 5.0)
    return min(MAX_REFRESH, max(MIN_REFRESH, float(interval)))


def live(
    report: Mapping[str, Any] | None,
    alerts: Mapping[str, Any] | None,
    health: Mapping[str, Any],
    now: float,
) -> tuple[str, str]:
    """(title, the page's live part) from the JSON of /report, /alerts and /health."""
    caches = (report or {}).get("caches", [])
    firing = (alerts or {}).get("firing", 0)
    pending = (alerts or {}).get("pending", 0)
    sources = _source_rows(health, now)
    down = sum(1 for check in health.get("checks", {}).values() if check.get("up") is False)
    title = f"cachewatch: {len(caches)} caches, {firing} firing"
    pills = [
        pill(f"{len(caches)} caches", "caches"),
        pill(f"{firing} firing", "firing" if firing else "ok"),
        pill(f"{pending} pending", "pending" if pending else "ok"),
        pill(f"health: {health.get('status', 'unknown')}", str(health.get("status", ""))),
        pill(f"{len(sources) - down} of {len(sources)} sources up", "down" if down else "up"),
    ]
    parts = [f'<div class="summary">{"".join(pills)}</div>']
    if alerts is not None:
        parts.append('<h2 id="alerts">Firing and pending alerts</h2>')
        parts.append(
            table(ALERT_COLUMNS, _alert_rows(alerts, now), empty="No alert is firing or pending.")
        )
    if report is not None:
        parts.append('<h2 id="caches">Caches</h2>')
        rows = _cache_rows(report, alerts)
        parts.append(table(CACHE_COLUMNS, rows, numeric=CACHE_NUMERIC, empty="No cache yet."))
    parts.append('<h2 id="sources">Sources</h2>')
    parts.append(table(SOURCE_COLUMNS, sources, numeric={"Poll took"}, empty="No source."))
    if report is not None:
        settings = report["settings"]
        parts.append(
            '<p class="muted">Sampled every '
            f"{e(units.duration(settings['sample_interval_seconds']))}; rates and hit ratios "
            f"over {e(units.duration(settings['rate_window_seconds']))}, trends and sparklines "
            f"over {e(units.duration(settings['trend_window_seconds']))}; last sample "
            f"{ago(report.get('last_sample_timestamp'), now)}.</p>"
        )
    refresh = refresh_seconds(report)
    body = "".join(parts)
    fragment = f'<div id="live" data-title="{e(title)}" data-refresh="{refresh:g}">{body}</div>'
    return title, fragment


def tool_links(links: Mapping[str, str | None]) -> dict[str, str]:
    """The configured links to other tools, by display name."""
    return {LINK_NAMES.get(key, key): url for key, url in links.items() if url}


def page(
    title: str,
    fragment: str,
    links: Mapping[str, str | None],
    endpoints: Mapping[str, str] | None = None,
) -> bytes:
    """The whole page; ``endpoints`` (path -> what) are the site's other routes, such as
    /probe and the probes, listed at the foot."""
    shown = [
        f'<a href="{e(path.lstrip("/"))}" title="{e(what)}">{e(path)}</a>'
        for path, what in (endpoints or {}).items()
    ]
    footer = '<span id="updated">updates itself</span>' + "".join(f" · {link}" for link in shown)
    return layout(title, fragment, links=tool_links(links), script=SCRIPT, footer=footer)
