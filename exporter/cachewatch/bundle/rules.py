"""Prometheus rule files: the recording rules and one alert rule per threshold and severity.

A warning that keeps firing is escalated by a second rule of the same alert name with
severity ``critical``, label ``escalated="true"`` and a ``for`` longer by
``alerts.escalate-after``; Alertmanager's inhibit rule then silences the warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import catalog as c
from ..analysis.definitions import WARNING, AlertDefinition, alert_definitions
from ..config.settings import BundleSettings
from ..config.values import format_duration
from . import promql as q

DASHBOARD_UIDS = {
    "fleet": "cachewatch-fleet",
    "overview": "cachewatch-overview",
    "detail": "cachewatch-cache-detail",
    "redis": "cachewatch-redis",
    "self": "cachewatch-self",
}
EXPORTER_JOBS = "cachewatch.*"
"""Scrape jobs whose ``up == 0`` is CachewatchExporterDown (cachewatch, cachewatch-demo)."""


@dataclass(frozen=True)
class AlertRule:
    """One rule of the alert file, before rendering to YAML."""

    alert: str
    expr: str
    for_seconds: float
    severity: str
    summary: str
    description: str
    value: str
    threshold: str
    anchor: str
    dashboard: str
    extra_labels: dict[str, str] = field(default_factory=dict)
    link_labels: tuple[str, ...] = ()
    """Labels whose values the dashboard link selects (``var-job=...&var-cache=...``)."""


# How each unit's value is shown in annotations (Go templates, rendered by Prometheus).
VALUE_TEMPLATES = {
    "ratio": "{{ $value | humanizePercentage }}",
    "bytes": "{{ $value | humanize1024 }}B",
    "seconds": "{{ $value | humanizeDuration }}",
    "factor": '{{ printf "%.4g" $value }}',
    "bool": "{{ $value }}",
}


def show_threshold(unit: str, value: float) -> str:
    """A threshold as the annotations show it, in the same style as the value."""
    if unit == "ratio":
        return f"{value * 100:.4g}%"
    if unit == "bytes":
        return humanize1024(value) + "B"
    if unit == "seconds":
        return humanize_duration(value)
    return f"{value:.4g}"


def render_value(unit: str, value: float) -> str:
    """What ``VALUE_TEMPLATES[unit]`` renders to in Prometheus (for the promtool tests)."""
    if unit == "bool":
        return f"{value:g}"
    return show_threshold(unit, value)


def humanize_duration(value: float) -> str:
    """Prometheus's ``humanizeDuration`` template function."""
    if value == 0:
        return "0s"
    sign = "-" if value < 0 else ""
    v = abs(value)
    if v >= 1:
        total = int(v)
        days, hours = total // 86400, (total // 3600) % 24
        minutes, seconds = (total // 60) % 60, total % 60
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{v:.4g}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if v >= 1:
            break
        prefix = p
        v *= 1000
    return f"{sign}{v:.4g}{prefix}s"


def humanize1024(value: float) -> str:
    """Prometheus's ``humanize1024`` template function."""
    if abs(value) <= 1:
        return f"{value:.4g}"
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(value) < 1024:
            break
        value /= 1024
        prefix = p
    return f"{value:.4g}{prefix}"


PER_PROCESS = frozenset({"memory_bytes", "memory_limit_ratio", "memory_full_seconds", "source_up"})
"""Signals of one process: they keep ``instance`` (which replica holds the memory); the others
are the service's, over all its replicas (the hit ratio of a service is over all of them)."""


def signal_expr(definition: AlertDefinition, threshold: float, config: BundleSettings) -> str:
    """The PromQL condition of ``definition`` at ``threshold``; its value is the signal."""
    t = q.fmt_number(threshold)
    v = q.vocabulary(config)
    op = ">" if definition.above else "<"
    memory, limit = c.MEMORY.name, c.MEMORY_LIMIT.name
    trend = format_duration(config.trend_window)
    if definition.signal == "hit_ratio":
        idle = q.fmt_number(config.hit_ratio_min_request_rate)
        # The idle-cache guard: a cache serving too few lookups never alerts.
        return f"{v.HIT_RATIO} < {t} and on ({v.SERVICE}) {v.REQUESTS} >= {idle}"
    if definition.signal == "memory_bytes":
        return f"max by ({v.PROCESS}) ({memory}) {op} {t}"
    if definition.signal == "memory_limit_ratio":
        return f"{v.MEMORY_LIMIT_RATIO} {op} {t}"
    if definition.signal == "memory_full_seconds":
        # Value: seconds until the limit at the fitted growth rate; condition: predict_linear.
        p = v.PROCESS
        return (
            f"max by ({p}) (({limit} - {memory}) / (deriv({memory}[{trend}]) > 0))"
            f" and on ({p}) max by ({p}) ("
            f"predict_linear({memory}[{trend}], {t}) >= ({limit} > 0))"
        )
    if definition.signal == "error_ratio":
        return f"{v.ERROR_RATIO} {op} {t}"
    if definition.signal == "eviction_ratio":
        return f"{v.EVICTION_RATIO} {op} {t}"
    if definition.signal == "latency_p99_seconds":
        return f"{v.latency_quantile(0.99)} {op} {t}"
    if definition.signal == "cleanup_overdue_factor":
        return f"{v.cleanup_overdue_expr()} {op} {t}"
    if definition.signal == "source_up":
        by = ", ".join((*config.group_labels, "instance", "source"))
        return f"max by ({by}) ({c.SOURCE_UP.name}) == 0"
    raise ValueError(f"no PromQL for alert signal {definition.signal!r}")


def _label(name: str) -> str:
    return "{{ $labels." + name + " }}"


def service_text(config: BundleSettings, per_process: bool) -> str:
    """Which service (and replica) an alert is about, for its summary: ``of job search-api at
    instance 10.0.0.7:8000``."""
    service = ", ".join(f"{label} {_label(label)}" for label in config.group_labels)
    return f"of {service}" + (f" at instance {_label('instance')}" if per_process else "")


def _subject(definition: AlertDefinition, config: BundleSettings) -> str:
    where = service_text(config, definition.signal in PER_PROCESS)
    if definition.signal == "source_up":
        return f"source {_label('source')} {where}"
    if definition.signal == "latency_p99_seconds":
        return f"cache {_label('cache')} ({_label('operation')}) {where}"
    return f"cache {_label('cache')} {where}"


def _link_labels(config: BundleSettings, per_process: bool, per_cache: bool) -> tuple[str, ...]:
    return (
        *config.group_labels,
        *(("instance",) if per_process else ()),
        *(("cache",) if per_cache else ()),
    )


def cache_alert_rules(config: BundleSettings) -> list[AlertRule]:
    """The rules of every alert definition, escalations included."""
    rules: list[AlertRule] = []
    for d in alert_definitions(config):
        dashboard = "self" if not d.per_cache else "detail"
        for threshold in d.thresholds:
            shown = show_threshold(d.unit, threshold.value)
            if d.signal == "source_up":
                value, shown, description = "down", "up", d.description
            else:
                value = VALUE_TEMPLATES[d.unit]
                relation = "above" if d.above else "below"
                description = f"{d.description} Now {value}, {relation} {shown}."
            common: dict[str, Any] = dict(
                alert=d.name,
                expr=signal_expr(d, threshold.value, config),
                summary=f"{d.summary} on {_subject(d, config)}",
                link_labels=_link_labels(config, d.signal in PER_PROCESS, d.per_cache),
                description=description,
                value=value,
                threshold=shown,
                anchor=d.anchor,
                dashboard=dashboard,
            )
            rules.append(
                AlertRule(for_seconds=threshold.for_seconds, severity=threshold.severity, **common)
            )
            if d.escalates and threshold.severity == WARNING:
                after = format_duration(config.alert_escalate_after_seconds)
                escalated = {
                    **common,
                    "summary": f"{common['summary']} (escalated: still firing after {after})",
                }
                rules.append(
                    AlertRule(
                        for_seconds=threshold.for_seconds + config.alert_escalate_after_seconds,
                        severity="critical",
                        extra_labels={"escalated": "true"},
                        **escalated,
                    )
                )
    return rules


def redis_and_exporter_rules(config: BundleSettings) -> list[AlertRule]:
    """Alerts on the exporter itself and on the Redis server (redis_exporter's names).

    Their expressions keep every label of the target (job, instance and the group labels
    a Prometheus or remote-write adds), so each process alerts on its own."""
    where = service_text(config, True)
    link = (*config.group_labels, "instance")
    return [
        AlertRule(
            "CachewatchExporterDown",
            f'up{{job=~"{EXPORTER_JOBS}"}} == 0',
            60,
            "critical",
            f"cachewatch exporter {where} is down",
            "Prometheus cannot scrape {{ $labels.job }} at {{ $labels.instance }}: no cache "
            "metrics and no cache alerts from it until it is back.",
            "down",
            "up",
            "cachewatchexporterdown",
            "self",
            link_labels=link,
        ),
        AlertRule(
            "RedisDown",
            "redis_up == 0",
            60,
            "critical",
            f"Redis {where} is down",
            "The exporter cannot reach the Redis server (redis_up is 0).",
            "down",
            "up",
            "redisdown",
            "redis",
            link_labels=link,
        ),
        AlertRule(
            "RedisMemoryNearMax",
            "redis_memory_used_bytes / (redis_memory_max_bytes > 0) > 0.9",
            300,
            "warning",
            f"Redis memory is near maxmemory {where}",
            "Redis uses {{ $value | humanizePercentage }} of maxmemory: it will evict keys or "
            "refuse writes, depending on maxmemory-policy.",
            "{{ $value | humanizePercentage }}",
            "90%",
            "redismemorynearmax",
            "redis",
            link_labels=link,
        ),
        AlertRule(
            "RedisRejectedConnections",
            "increase(redis_rejected_connections_total[5m]) > 0",
            0,
            "warning",
            f"Redis rejects connections {where}",
            'Redis rejected {{ printf "%.0f" $value }} connections in 5 minutes (maxclients '
            "reached).",
            '{{ printf "%.0f" $value }}',
            "0",
            "redisrejectedconnections",
            "redis",
            link_labels=link,
        ),
    ]


def render_rule(rule: AlertRule, config: BundleSettings) -> dict[str, Any]:
    """One alert rule as Prometheus reads it."""
    uid = DASHBOARD_UIDS[rule.dashboard]
    dashboard = f"{config.grafana_url.rstrip('/')}/d/{uid}"
    if rule.link_labels:
        dashboard += "?" + "&".join(
            f"var-{label}={{{{ $labels.{label} | urlquery }}}}" for label in rule.link_labels
        )
    out: dict[str, Any] = {"alert": rule.alert, "expr": rule.expr}
    if rule.for_seconds:
        out["for"] = format_duration(rule.for_seconds)
    out["labels"] = {"severity": rule.severity, **rule.extra_labels}
    out["annotations"] = {
        "summary": rule.summary,
        "description": rule.description,
        "value": rule.value,
        "threshold": rule.threshold,
        "runbook_url": f"{config.runbook_url}#{rule.anchor}",
        "dashboard_url": dashboard,
    }
    return out


def recording_file(config: BundleSettings) -> dict[str, Any]:
    v = q.vocabulary(config)
    return {
        "groups": [
            {
                "name": "cachewatch.recording",
                "rules": [{"record": r, "expr": e} for r, e in v.recording_rules()],
            }
        ]
    }


def cache_alerts_file(config: BundleSettings) -> dict[str, Any]:
    rules = cache_alert_rules(config) + redis_and_exporter_rules(config)[:1]
    return {
        "groups": [{"name": "cachewatch.alerts", "rules": [render_rule(r, config) for r in rules]}]
    }


def redis_alerts_file(config: BundleSettings) -> dict[str, Any]:
    rules = redis_and_exporter_rules(config)[1:]
    return {"groups": [{"name": "redis.alerts", "rules": [render_rule(r, config) for r in rules]}]}
