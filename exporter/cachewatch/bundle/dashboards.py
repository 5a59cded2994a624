"""Grafana dashboards built with grafana-foundation-sdk from the catalogue and thresholds.

Four dashboards: Cache overview (every cache), Cache detail (templated by ``cache``),
Redis server (redis_exporter's names) and cachewatch itself. Panels read the recording
rules where one exists, so a dashboard shows exactly what the alerts evaluate; threshold
lines come from the configured thresholds and from ``cachewatch_alert_threshold``.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as pb
from grafana_foundation_sdk.builders import stat as sb
from grafana_foundation_sdk.builders import timeseries as tb
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from .. import catalog as c
from ..analysis.definitions import CRITICAL, AlertDefinition, alert_definitions
from ..config.settings import BundleSettings
from . import promql as q
from .rules import DASHBOARD_UIDS, EXPORTER_JOBS

PROMETHEUS = dm.DataSourceRef(type_val="prometheus", uid="prometheus")
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str
    exemplar: bool = False
    instant: bool = False
    unit: str | None = None
    """A unit of this query's series when it differs from the panel's."""


@dataclass
class Panel:
    """What one panel shows; ``kind`` is ``timeseries`` or ``stat``."""

    title: str
    description: str
    targets: list[Target]
    unit: str = "short"
    kind: str = "timeseries"
    thresholds: list[tuple[float | None, str]] = field(default_factory=list)
    min: float | None = None
    max: float | None = None
    width: int = 12


def _threshold_steps(d: AlertDefinition) -> list[tuple[float | None, str]]:
    """Colour steps for an alert's thresholds: green on the good side, then yellow, red."""
    colours = {"warning": "yellow", CRITICAL: "red"}
    ordered = sorted(d.thresholds, key=lambda t: t.value, reverse=not d.above)
    if d.above:
        return [(None, "green"), *((t.value, colours[t.severity]) for t in ordered)]
    # Below-thresholds: red below critical, yellow below warning, green above.
    steps: list[tuple[float | None, str]] = []
    bad = sorted(d.thresholds, key=lambda t: t.value)
    steps.append((None, colours[bad[0].severity]))
    for lower, upper in itertools.pairwise(bad):
        steps.append((lower.value, colours[upper.severity]))
    steps.append((bad[-1].value, "green"))
    return steps


def _alert_threshold(name: str) -> Target:
    return Target(
        f'max by (severity) ({c.ALERT_THRESHOLD.name}{{alertname="{name}"}})',
        "{{severity}} threshold",
    )


def _sel(cache: str | None, extra: str = "") -> str:
    parts = ([f'cache="{cache}"'] if cache else []) + ([extra] if extra else [])
    return "{" + ",".join(parts) + "}" if parts else ""


def cache_panels(config: BundleSettings, cache: str | None) -> list[Panel]:
    """Per-cache panels; ``cache`` is a Grafana variable reference or None for all caches."""
    d = {a.name: a for a in alert_definitions(config)}
    v = q.vocabulary(config)
    s = _sel(cache)
    by = "{{cache}}" if cache is None else ""
    legend = (lambda text: f"{by} {text}".strip()) if cache is None else (lambda text: text)
    bucket = f"{c.OPERATION_DURATION.name}_bucket"
    return [
        Panel(
            "Hit ratio",
            f"Share of lookups answered from the cache over {v.window}. Below the yellow line "
            "CacheHitRatioLow warns, below the red line it is critical (only while the cache "
            "serves enough lookups). A falling ratio with rising evictions means the cache is "
            "too small; with few evictions, TTLs too short or keys that never repeat.",
            [
                Target(f"{v.HIT_RATIO}{s}", legend("hit ratio") or "hit ratio"),
                _alert_threshold("CacheHitRatioLow"),
            ],
            "percentunit",
            thresholds=_threshold_steps(d["CacheHitRatioLow"]),
            min=0,
            max=1,
        ),
        Panel(
            "Request rate",
            "Lookups per second (hits and misses). The hit-ratio alert ignores caches below "
            f"{config.hit_ratio_min_request_rate:g} lookups/s.",
            [
                Target(f"{v.REQUESTS}{s}", legend("lookups/s") or "lookups/s"),
                Target(f"{v.HITS}{s}", legend("hits/s") or "hits/s"),
            ],
            "reqps",
            min=0,
        ),
        Panel(
            "Operation latency p50 / p95 / p99",
            f"Latency quantiles per operation over {v.window}; dots are exemplars linked to "
            "traces in Jaeger. The p99 above the yellow line is CacheLatencyHigh.",
            [
                Target(f"{v.latency_quantile(0.5)}{s}", f"{by} {{{{operation}}}} p50".strip()),
                Target(f"{v.latency_quantile(0.95)}{s}", f"{by} {{{{operation}}}} p95".strip()),
                Target(
                    f"histogram_quantile(0.99, sum by (cache, operation, le) "
                    f"(rate({bucket}{s}[{RATE}])))",
                    f"{by} {{{{operation}}}} p99".strip(),
                    exemplar=True,
                ),
                _alert_threshold("CacheLatencyHigh"),
            ],
            "s",
            thresholds=_threshold_steps(d["CacheLatencyHigh"]),
            min=0,
        ),
        Panel(
            "Error ratio",
            f"Failed operations per operation (gets, puts, removals) over {v.window}. Above the "
            "yellow line CacheErrorRateHigh warns, above the red line it is critical.",
            [
                Target(f"{v.ERROR_RATIO}{s}", legend("errors") or "errors"),
                _alert_threshold("CacheErrorRateHigh"),
            ],
            "percentunit",
            thresholds=_threshold_steps(d["CacheErrorRateHigh"]),
            min=0,
        ),
        Panel(
            "Errors by operation and exception",
            "Failed operations per second by exception class: which operation fails and why.",
            [
                Target(
                    f"sum by (cache, operation, error) (rate({c.ERRORS.name}{s}[{RATE}]))",
                    f"{by} {{{{operation}}}} {{{{error}}}}".strip(),
                )
            ],
            "ops",
            min=0,
        ),
        Panel(
            "Entries",
            "Entries in the cache and its configured entry limit, where it has one. A cache "
            "pinned at its limit evicts on every put.",
            [
                Target(f"{c.CACHE_SIZE.name}{s}", legend("entries") or "entries"),
                Target(f"{c.MAX_ENTRIES.name}{s}", legend("entry limit") or "entry limit"),
            ],
            "short",
            min=0,
        ),
        Panel(
            "Memory against its limit",
            "Memory held by the cache (estimated from samples for in-process caches) and its "
            "configured limit. CacheMemoryHigh fires above the fixed thresholds, "
            "CacheMemoryNearLimit near the limit.",
            [
                Target(f"{c.MEMORY.name}{s}", legend("memory") or "memory"),
                Target(f"{c.MEMORY_LIMIT.name}{s}", legend("limit") or "limit"),
                _alert_threshold("CacheMemoryHigh"),
            ],
            "bytes",
            thresholds=_threshold_steps(d["CacheMemoryHigh"]),
            min=0,
        ),
        Panel(
            "Memory share of limit",
            "Memory as a share of the cache's limit; above the line is CacheMemoryNearLimit.",
            [Target(f"{v.MEMORY_LIMIT_RATIO}{s}", legend("of limit") or "of limit")],
            "percentunit",
            thresholds=_threshold_steps(d["CacheMemoryNearLimit"]),
            min=0,
            max=1,
        ),
        Panel(
            "Evictions, expirations, puts, removals",
            "Entries leaving the cache per second: evicted for capacity, expired by TTL, "
            "deleted explicitly; and entries written.",
            [
                Target(
                    f"sum by (cache) (rate({c.CACHE_EVICTIONS.name}{s}[{RATE}]))",
                    legend("evicted/s") or "evicted/s",
                ),
                Target(
                    f"sum by (cache) (rate({c.EXPIRATIONS.name}{s}[{RATE}]))",
                    legend("expired/s") or "expired/s",
                ),
                Target(
                    f"sum by (cache) (rate({c.CACHE_PUTS.name}{s}[{RATE}]))",
                    legend("puts/s") or "puts/s",
                ),
                Target(
                    f"sum by (cache) (rate({c.CACHE_REMOVALS.name}{s}[{RATE}]))",
                    legend("removed/s") or "removed/s",
                ),
            ],
            "ops",
            min=0,
        ),
        Panel(
            "Evictions per put",
            f"Evictions per entry written over {v.window}; above the line is "
            "CacheEvictionRateHigh: the cache is too small for its working set.",
            [
                Target(f"{v.EVICTION_RATIO}{s}", legend("evictions per put") or "evictions/put"),
                _alert_threshold("CacheEvictionRateHigh"),
            ],
            "percentunit",
            thresholds=_threshold_steps(d["CacheEvictionRateHigh"]),
            min=0,
        ),
        Panel(
            "Cleanups",
            "Cleanup runs per second by trigger, entries they removed, and time since the "
            "last run. CacheCleanupStalled fires when the last run is overdue.",
            [
                Target(
                    f"sum by (cache, trigger) (rate({c.CLEANUPS.name}{s}[{RATE}]))",
                    f"{by} runs/s {{{{trigger}}}}".strip(),
                ),
                Target(
                    f"sum by (cache) (rate({c.CLEANUP_REMOVED.name}{s}[{RATE}]))",
                    legend("removed/s") or "removed/s",
                ),
            ],
            "ops",
            min=0,
        ),
        Panel(
            "Cleanup overdue",
            "Time since the last cleanup divided by the usual interval between cleanups "
            "(over 6h). Above the line is CacheCleanupStalled.",
            [
                Target(f"{v.CLEANUP_OVERDUE}{s}", legend("overdue factor") or "overdue factor"),
                Target(
                    f"time() - {c.LAST_CLEANUP.name}{s}",
                    legend("seconds since last") or "seconds since last",
                ),
            ],
            "short",
            thresholds=_threshold_steps(d["CacheCleanupStalled"]),
            min=0,
        ),
        Panel(
            "Hit ratio trend (exporter)",
            "The exporter's hit ratio over its trend window and its least-squares change per "
            "hour: a steadily negative slope warns before the alert does.",
            [
                Target(f"{c.HIT_RATIO.name}{s}", legend("window hit ratio") or "window ratio"),
                Target(f"{c.HIT_RATIO_CHANGE.name}{s}", legend("change/h") or "change per hour"),
            ],
            "percentunit",
            kind="stat",
        ),
        Panel(
            "Growth and forecast",
            "Least-squares growth of memory and entries over the trend window, and the "
            "forecast time until the memory limit (shown only while memory grows toward a "
            "limit; below the memory-full-soon threshold CacheMemoryFullSoon fires).",
            [
                Target(f"{c.MEMORY_GROWTH.name}{s}", legend("memory growth") or "memory growth"),
                Target(
                    f"{c.SIZE_GROWTH.name}{s}",
                    legend("entries/s") or "entries growth",
                    unit="short",
                ),
                Target(f"{c.MEMORY_FULL.name}{s}", legend("full in") or "memory full in", unit="s"),
            ],
            "Bps",
            kind="stat",
        ),
        Panel(
            "Alert states",
            "Alerts the exporter evaluates itself (1 = firing) and, below, the alerts "
            "Prometheus fires from the rules (pending or firing).",
            [
                Target(
                    f"max by (alertname, cache, severity) ({c.ALERT_ACTIVE.name}{s})",
                    "{{alertname}} {{cache}} {{severity}}",
                ),
                Target(
                    "ALERTS" + _sel(cache, 'alertname=~"Cache.*"'),
                    "rule: {{alertname}} {{cache}} {{severity}} {{alertstate}}",
                ),
            ],
            "short",
            min=0,
            width=24,
        ),
    ]


def redis_panels() -> list[Panel]:
    i = '{instance=~"$instance"}'
    return [
        Panel(
            "Up",
            "1 when the exporter can read the Redis server (RedisDown fires on 0).",
            [Target(f"redis_up{i}", "{{instance}}")],
            "short",
            kind="stat",
            thresholds=[(None, "red"), (1, "green")],
            width=6,
        ),
        Panel(
            "Memory used against maxmemory",
            "Memory Redis uses and its maxmemory (0: no limit). RedisMemoryNearMax fires "
            "above 90% of maxmemory.",
            [
                Target(f"redis_memory_used_bytes{i}", "{{instance}} used"),
                Target(f"redis_memory_max_bytes{i}", "{{instance}} maxmemory"),
            ],
            "bytes",
            min=0,
            width=18,
        ),
        Panel(
            "Memory fragmentation",
            "RSS divided by used memory; above 1.5 memory is "
            "fragmented, below 1 Redis is swapping.",
            [Target(f"redis_mem_fragmentation_ratio{i}", "{{instance}}")],
            "short",
            thresholds=[(None, "red"), (1, "green"), (1.5, "yellow")],
        ),
        Panel(
            "Clients",
            "Connected and blocked clients; rejected connections mean "
            "maxclients was reached (RedisRejectedConnections).",
            [
                Target(f"redis_connected_clients{i}", "{{instance}} connected"),
                Target(f"redis_blocked_clients{i}", "{{instance}} blocked"),
                Target(
                    f"rate(redis_rejected_connections_total{i}[{RATE}])", "{{instance}} rejected/s"
                ),
            ],
            "short",
            min=0,
        ),
        Panel(
            "Commands per second",
            "Commands processed per second.",
            [Target(f"rate(redis_commands_processed_total{i}[{RATE}])", "{{instance}}")],
            "ops",
            min=0,
        ),
        Panel(
            "Keyspace hit ratio",
            "Server-wide share of key lookups that found the key.",
            [
                Target(
                    f"rate(redis_keyspace_hits_total{i}[{RATE}]) / (rate("
                    f"redis_keyspace_hits_total{i}[{RATE}]) + rate(redis_keyspace_misses_total"
                    f"{i}[{RATE}]))",
                    "{{instance}}",
                )
            ],
            "percentunit",
            min=0,
            max=1,
        ),
        Panel(
            "Keys per database",
            "Keys and keys with a TTL, per database.",
            [
                Target(f"redis_db_keys{i}", "{{instance}} {{db}} keys"),
                Target(f"redis_db_keys_expiring{i}", "{{instance}} {{db}} expiring"),
            ],
            "short",
            min=0,
        ),
        Panel(
            "Evictions and expirations",
            "Keys evicted for maxmemory and keys expired by "
            "TTL, per second. Evictions mean Redis is full.",
            [
                Target(f"rate(redis_evicted_keys_total{i}[{RATE}])", "{{instance}} evicted/s"),
                Target(f"rate(redis_expired_keys_total{i}[{RATE}])", "{{instance}} expired/s"),
            ],
            "ops",
            min=0,
        ),
    ]


def self_panels() -> list[Panel]:
    j = f'{{job=~"{EXPORTER_JOBS}"}}'
    return [
        Panel(
            "Scrape target up",
            "1 when Prometheus can scrape the exporter (CachewatchExporterDown fires on 0).",
            [Target(f"up{j}", "{{job}} {{instance}}")],
            "short",
            kind="stat",
            thresholds=[(None, "red"), (1, "green")],
            width=8,
        ),
        Panel(
            "Sources up",
            "1 when the last poll of a source (local caches, Redis) worked; "
            "CacheSourceDown fires on 0.",
            [Target(c.SOURCE_UP.name, "{{instance}} {{source}}")],
            "short",
            kind="stat",
            thresholds=[(None, "red"), (1, "green")],
            width=8,
        ),
        Panel(
            "Health checks",
            "1 when a health check passes; /health answers 503 otherwise.",
            [Target(c.HEALTH_CHECK_OK.name, "{{check}}")],
            "short",
            kind="stat",
            thresholds=[(None, "red"), (1, "green")],
            width=8,
        ),
        Panel(
            "Source poll duration",
            "How long each source took to read on the last "
            "scrape; near the scrape timeout means scrapes will fail.",
            [Target(c.SOURCE_POLL_DURATION.name, "{{instance}} {{source}}")],
            "s",
            min=0,
        ),
        Panel(
            "Source errors",
            "Failed polls per second, per source.",
            [Target(f"rate({c.SOURCE_ERRORS.name}[{RATE}])", "{{instance}} {{source}}")],
            "ops",
            min=0,
        ),
        Panel(
            "Scrape cost",
            "Time Prometheus spends scraping the exporter and the samples "
            "per scrape: the cost of the cache-name cardinality.",
            [
                Target(f"scrape_duration_seconds{j}", "{{instance}} duration"),
                Target(f"scrape_samples_scraped{j}", "{{instance}} samples", unit="short"),
            ],
            "s",
            min=0,
        ),
        Panel(
            "Process memory",
            "Resident memory of the exporter process.",
            [Target(f"process_resident_memory_bytes{j}", "{{instance}}")],
            "bytes",
            min=0,
        ),
        Panel(
            "Process CPU",
            "CPU seconds per second used by the exporter process.",
            [Target(f"rate(process_cpu_seconds_total{j}[{RATE}])", "{{instance}}")],
            "percentunit",
            min=0,
        ),
        Panel(
            "Cache names folded into other",
            "Cache registrations beyond cache.max-names "
            'counted as cache="other"; raise the limit or fix dynamic cache names.',
            [Target(c.CACHES_DROPPED.name, "{{instance}}")],
            "short",
            kind="stat",
            width=12,
        ),
        Panel(
            "Version",
            "The cachewatch version each instance runs.",
            [Target(c.BUILD_INFO.name, "{{instance}} {{version}}", instant=True)],
            "short",
            kind="stat",
            width=12,
        ),
    ]


def _build_panel(panel: Panel) -> Any:
    builder: Any = tb.Panel() if panel.kind == "timeseries" else sb.Panel()
    builder.title(panel.title).description(panel.description).datasource(PROMETHEUS)
    builder.unit(panel.unit).height(8).span(panel.width)
    if panel.min is not None:
        builder.min(panel.min)
    if panel.max is not None:
        builder.max(panel.max)
    if panel.thresholds:
        steps = [dm.Threshold(value=v, color=col) for v, col in panel.thresholds]
        builder.thresholds(db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(steps))
        if panel.kind == "timeseries":
            builder.thresholds_style(
                cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED)
            )
    if panel.kind == "timeseries":
        builder.legend(
            cb.VizLegendOptions()
            .display_mode(cm.LegendDisplayMode.TABLE)
            .placement(cm.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
    else:
        builder.reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]))
    for index, target in enumerate(panel.targets):
        query = (
            pb.Dataquery()
            .expr(target.expr)
            .legend_format(target.legend)
            .ref_id(chr(ord("A") + index))
            .datasource(PROMETHEUS)
        )
        if target.exemplar:
            query.exemplar(True)
        if target.instant:
            query.instant()
        builder.with_target(query)
        if target.unit is not None:
            builder.override_by_query(
                chr(ord("A") + index), [dm.DynamicConfigValue(id_val="unit", value=target.unit)]
            )
    return builder


def _variable(name: str, label: str, metric: str) -> Any:
    return (
        db.QueryVariable(name)
        .label(label)
        .datasource(PROMETHEUS)
        .query(f"label_values({metric}, {name})")
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
    )


def _dashboard(
    uid: str, title: str, description: str, panels: list[Panel], variables: list[Any]
) -> dict[str, Any]:
    builder = (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["cachewatch"])
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
    )
    for variable in variables:
        builder.with_variable(variable)
    for other, other_title in (
        (DASHBOARD_UIDS["overview"], "Cache overview"),
        (DASHBOARD_UIDS["detail"], "Cache detail"),
        (DASHBOARD_UIDS["redis"], "Redis server"),
        (DASHBOARD_UIDS["self"], "cachewatch"),
    ):
        if other != uid:
            builder.link(
                db.DashboardLink(other_title)
                .type(dm.DashboardLinkType.LINK)
                .url(f"/d/{other}")
                .keep_time(True)
            )
    for panel in panels:
        builder.with_panel(_build_panel(panel))
    document: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    return document


def all_dashboards(config: BundleSettings) -> dict[str, dict[str, Any]]:
    """File stem -> dashboard JSON of every dashboard."""
    return {
        "cache-overview": _dashboard(
            DASHBOARD_UIDS["overview"],
            "Cache overview",
            "Every cache: hit ratio, traffic, latency, errors, size, memory, churn, cleanups, "
            "trends and alert states.",
            cache_panels(config, None),
            [],
        ),
        "cache-detail": _dashboard(
            DASHBOARD_UIDS["detail"],
            "Cache detail",
            "One cache in detail (choose it above).",
            cache_panels(config, "$cache"),
            [_variable("cache", "Cache", c.CACHE_GETS.name)],
        ),
        "redis-server": _dashboard(
            DASHBOARD_UIDS["redis"],
            "Redis server",
            "The Redis server: memory, fragmentation, clients, commands, keyspace, evictions "
            "and expiry (redis_exporter's metric names).",
            redis_panels(),
            [_variable("instance", "Instance", "redis_up")],
        ),
        "cachewatch": _dashboard(
            DASHBOARD_UIDS["self"],
            "cachewatch",
            "The exporter itself: scrape health, sources, poll durations, scrape cost and "
            "process resources.",
            self_panels(),
            [],
        ),
    }
