"""Prometheus rule files: the recording rules and one alert rule per threshold and severity,
for the built-in alerts and the custom ones of the configuration file.

A warning that keeps firing is escalated by a second rule of the same alert name with
severity ``critical``, label ``escalated="true"`` and a ``for`` longer by
``alerts.escalate-after``, while escalation is on for the cache; Alertmanager's inhibit rule
then silences the warning. Conditions compare against the thresholds in force that the
exporters publish (``conditions``), and the annotations show that threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import catalog as c
from ..analysis.definitions import WARNING, AlertDefinition, Threshold, alert_definitions
from ..analysis.thresholds import can_escalate
from ..config.settings import BundleSettings
from ..config.values import format_duration
from . import conditions
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
    runbook: str = ""
    """The runbook URL, when not the shipped runbook's ``#anchor`` (a custom alert's)."""
    threshold_default: str = ""
    """The threshold as shown when no exporter publishes it (``threshold`` is a template
    that asks Prometheus for the one in force)."""


# How each unit's value is shown in annotations: a Go template pipeline and a suffix.
FORMATS = {
    "ratio": ("humanizePercentage", ""),
    "bytes": ("humanize1024", "B"),
    "seconds": ("humanizeDuration", ""),
    "factor": ('printf "%.4g"', ""),
    "per_second": ('printf "%.4g"', "/s"),
    "bool": ("", ""),
}


def _shown(subject: str, unit: str) -> str:
    pipeline, suffix = FORMATS[unit]
    return "{{ " + subject + (f" | {pipeline}" if pipeline else "") + " }}" + suffix


VALUE_TEMPLATES = {unit: _shown("$value", unit) for unit in FORMATS}
"""How the alert's value is shown (Go templates, rendered by Prometheus)."""


def show_threshold(unit: str, value: float) -> str:
    """A threshold as the annotations show it, in the same style as the value."""
    if unit == "ratio":
        return f"{value * 100:.4g}%"
    if unit == "bytes":
        return humanize1024(value) + "B"
    if unit == "seconds":
        return humanize_duration(value)
    if unit == "per_second":
        return f"{value:.4g}/s"
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


PER_PROCESS = conditions.PER_PROCESS_SIGNALS


def _label(name: str) -> str:
    return "{{ $labels." + name + " }}"


def service_text(config: BundleSettings, per_process: bool) -> str:
    """Which service (and replica) an alert is about, for its summary: ``of job search-api at
    instance 10.0.0.7:8000``."""
    service = ", ".join(f"{label} {_label(label)}" for label in config.group_labels)
    return f"of {service}" + (f" at instance {_label('instance')}" if per_process else "")


def _subject(definition: AlertDefinition, config: BundleSettings) -> str:
    where = service_text(config, conditions.per_process(definition.signal))
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


def threshold_template(
    definition: AlertDefinition, threshold: Threshold, config: BundleSettings
) -> str:
    """The threshold in force for the alert's cache, as Prometheus renders it: the
    exporter's series, else the threshold generated here."""
    query = conditions.threshold_query(definition, threshold, config)
    args = conditions.threshold_args(config)
    shown = show_threshold(definition.unit, threshold.value)
    return (
        f"{{{{ with query (printf `{query}` {args}) }}}}"
        f"{_shown('. | first | value', definition.unit)}{{{{ else }}}}{shown}{{{{ end }}}}"
    )


def runbook_url(definition: AlertDefinition, config: BundleSettings) -> str:
    """Where the alert's runbook section is: the shipped runbook, or for a custom alert the
    generated one (``bundle.custom-runbook-url``, by default next to the shipped one)."""
    base = config.runbook_url
    if definition.custom is not None:
        base = config.custom_runbook_url or base.rsplit("/", 1)[0] + "/" + CUSTOM_RUNBOOK
    return f"{base}#{definition.anchor}"


CUSTOM_RUNBOOK = "runbook-custom.md"


def alert_rules(definition: AlertDefinition, config: BundleSettings) -> list[AlertRule]:
    """The rules of one alert definition: one per threshold, and the escalated warning."""
    d = definition
    dashboard = "self" if not d.per_cache else "detail"
    rules: list[AlertRule] = []
    for threshold in d.thresholds:
        if d.signal == "source_up":
            expr = conditions.source_down(config)
            value, shown, description = "down", "up", d.description
            default = shown
        else:
            expr = conditions.condition(d, threshold, config)
            value = VALUE_TEMPLATES[d.unit]
            shown = threshold_template(d, threshold, config)
            default = show_threshold(d.unit, threshold.value)
            description = f"{d.description} Now {value}, {d.relation} {shown}."
        common: dict[str, Any] = dict(
            alert=d.name,
            summary=f"{d.summary} on {_subject(d, config)}",
            link_labels=_link_labels(config, conditions.per_process(d.signal), d.per_cache),
            description=description,
            value=value,
            threshold=shown,
            threshold_default=default,
            anchor=d.anchor,
            dashboard=dashboard,
            runbook=runbook_url(d, config),
        )
        rules.append(
            AlertRule(
                expr=expr, for_seconds=threshold.for_seconds, severity=threshold.severity,
                **common,
            )
        )  # fmt: skip
        if can_escalate(d) and threshold.severity == WARNING:
            after = format_duration(config.alert_escalate_after_seconds)
            common["summary"] = f"{common['summary']} (escalated: still firing after {after})"
            rules.append(
                AlertRule(
                    expr=conditions.escalation(d, expr, config),
                    for_seconds=threshold.for_seconds + config.alert_escalate_after_seconds,
                    severity="critical",
                    extra_labels={"escalated": "true"},
                    **common,
                )
            )
    return rules


def cache_alert_rules(config: BundleSettings) -> list[AlertRule]:
    """The rules of every alert definition, escalations included, custom alerts last."""
    return [r for d in alert_definitions(config) for r in alert_rules(d, config)]


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
        *redis_topology_rules(config),
    ]


def redis_topology_rules(config: BundleSettings) -> list[AlertRule]:
    """Alerts on Redis as deployed: replication, Sentinel, Cluster (redis_exporter's names,
    per Redis node, as ``/metrics`` or ``/probe`` publish them)."""
    where = service_text(config, True)
    link = (*config.group_labels, "instance")
    lag = format_duration(config.redis_replica_lag_seconds)
    lag_threshold = q.fmt_number(config.redis_replica_lag_seconds)
    window = format_duration(config.redis_replicas_window)
    sentinels = config.redis_min_sentinels
    master = "{{ $labels.master_host }}:{{ $labels.master_port }}"
    replica = "{{ $labels.slave_ip }}:{{ $labels.slave_port }}"
    sentinel_master = "{{ $labels.master_name }} ({{ $labels.master_address }})"
    count = '{{ printf "%.0f" $value }}'
    return [
        AlertRule(
            "RedisReplicationBroken",
            f"{c.REDIS_MASTER_LINK_UP.name} == 0",
            60,
            "critical",
            f"Redis replica {where} lost its master {master}",
            f"The replica's link to its master {master} is down: it serves stale data, and "
            "a failover to it would lose writes.",
            "down",
            "up",
            "redisreplicationbroken",
            "redis",
            link_labels=link,
        ),
        AlertRule(
            "RedisReplicaLagHigh",
            f"{c.REDIS_CONNECTED_SLAVE_LAG.name} > {lag_threshold}",
            120,
            "warning",
            f"Redis replica {replica} lags behind its master {where}",
            f"The replica {replica} last acknowledged its offset "
            f"{VALUE_TEMPLATES['seconds']} ago, more than {lag}: reads from it are stale.",
            VALUE_TEMPLATES["seconds"],
            lag,
            "redisreplicalaghigh",
            "redis",
            link_labels=link,
        ),
        AlertRule(
            "RedisReplicasDisconnected",
            f"{c.info_metric('redis_connected_slaves')} < max_over_time("
            f"{c.info_metric('redis_connected_slaves')}[{window}])",
            60,
            "warning",
            f"Redis master {where} lost replicas",
            f"The master has {count} connected replicas, fewer than it had in the last {window}.",
            count,
            f"the most in {window}",
            "redisreplicasdisconnected",
            "redis",
            link_labels=link,
        ),
        AlertRule(
            "RedisSentinelMasterNotOk",
            f"{c.REDIS_SENTINEL_MASTER_STATUS.name} == 0",
            60,
            "critical",
            f"Sentinel {where} sees master {sentinel_master} down",
            "The Sentinel reports the master as {{ $labels.master_status }}: subjectively "
            "(sdown) or, agreed with the others, objectively down (odown), when a failover "
            "follows.",
            "down",
            "ok",
            "redissentinelmasternotok",
            "redis",
            link_labels=link,
        ),
        AlertRule(
            "RedisSentinelsTooFew",
            f"{c.REDIS_SENTINEL_MASTER_OK_SENTINELS.name} < {sentinels}",
            300,
            "warning",
            f"Too few Sentinels watch master {sentinel_master} {where}",
            f"Only {count} Sentinels that are not down watch the master, fewer than "
            f"{sentinels}: one more lost and no failover can be authorized.",
            count,
            str(sentinels),
            "redissentinelstoofew",
            "redis",
            link_labels=link,
        ),
        AlertRule(
            "RedisClusterStateNotOk",
            f"{c.cluster_info_metric('redis_cluster_state')} == 0",
            60,
            "critical",
            f"Redis Cluster state is not ok {where}",
            "The node reports cluster_state:fail: it refuses queries, because slots are "
            "unassigned or served by failed masters, or it cannot reach a majority of masters.",
            "down",
            "ok",
            "redisclusterstatenotok",
            "redis",
            link_labels=link,
        ),
        AlertRule(
            "RedisClusterSlotsFailing",
            f"{c.cluster_info_metric('redis_cluster_slots_fail')} + "
            f"{c.cluster_info_metric('redis_cluster_slots_pfail')} > 0",
            60,
            "warning",
            f"Redis Cluster slots are failing {where}",
            f"{count} slots are served by masters this node sees failing (PFAIL) or the "
            "cluster agrees have failed (FAIL).",
            count,
            "0",
            "redisclusterslotsfailing",
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
        "runbook_url": rule.runbook or f"{config.runbook_url}#{rule.anchor}",
        "dashboard_url": dashboard,
    }
    return out


def recording_file(config: BundleSettings) -> dict[str, Any]:
    """The signals, then the thresholds in force for them (``conditions.lookup_rules``)."""
    v = q.vocabulary(config)
    rules: list[dict[str, Any]] = [{"record": r, "expr": e} for r, e in v.recording_rules()]
    rules += conditions.lookup_rules(alert_definitions(config), config)
    return {"groups": [{"name": "cachewatch.recording", "rules": rules}]}


def cache_alerts_file(config: BundleSettings) -> dict[str, Any]:
    """The cache alerts and CachewatchExporterDown; the custom alerts in a group of their own."""
    definitions = alert_definitions(config)
    builtin = [r for d in definitions if d.custom is None for r in alert_rules(d, config)]
    custom = [r for d in definitions if d.custom is not None for r in alert_rules(d, config)]
    rules = builtin + redis_and_exporter_rules(config)[:1]
    groups = [{"name": "cachewatch.alerts", "rules": [render_rule(r, config) for r in rules]}]
    if custom:
        groups.append(
            {"name": "cachewatch.custom", "rules": [render_rule(r, config) for r in custom]}
        )
    return {"groups": groups}


def redis_alerts_file(config: BundleSettings) -> dict[str, Any]:
    rules = redis_and_exporter_rules(config)[1:]
    return {"groups": [{"name": "redis.alerts", "rules": [render_rule(r, config) for r in rules]}]}
