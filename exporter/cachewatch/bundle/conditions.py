"""The PromQL conditions of the cache alerts: each signal (or catalogued metric) an alert
reads, compared against the threshold in force.

The threshold in force comes from the exporters, so that a threshold changed at run time
(a reload, ``configure_alert_threshold``) reaches Prometheus without regenerating the rules:
``cachewatch_alert_threshold`` with the cache's name where the cache has its own threshold,
else the exporter's default (``cache=""``), else, when no exporter publishes the series
(an older exporter, a Prometheus that does not scrape it), the threshold generated into the
rule. The series carry the labels of the exporter that publishes them, which are the labels
of the caches it publishes: the lookup is by the group labels and ``cache``, so one
service's thresholds never apply to another's, and it is joined to the signal with
``group_left``, so every replica of a per-process signal (memory) compares against its
service's threshold. Escalation is looked up the same way in
``cachewatch_alert_escalation_enabled``.

The lookups are recording rules (``cache:alert_threshold``, ``cache:alert_escalation``,
one per alert and severity, at the end of the recording group so that they see the
signals of the same evaluation): each is computed once per evaluation, however many
rules compare against it, and dashboards and annotations can read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import catalog as c
from ..analysis.definitions import AlertDefinition, Threshold
from ..analysis.thresholds import can_escalate
from ..config.settings import BundleSettings
from ..config.values import format_duration
from . import promql as q

PER_PROCESS_SIGNALS = frozenset(
    {"memory_bytes", "memory_limit_ratio", "memory_full_seconds", "source_up"}
)
"""Signals of one process: they keep ``instance`` (which replica holds the memory); the others
are the service's, over all its replicas (the hit ratio of a service is over all of them)."""


def per_process(reads: str) -> bool:
    """Whether an alert on ``reads`` is about one process: the per-process signals, and every
    gauge (a counter is read as its rate over the service's replicas)."""
    if reads in PER_PROCESS_SIGNALS:
        return True
    spec = c.BY_NAME.get(reads)
    return spec is not None and spec.type == "gauge"


@dataclass(frozen=True)
class Signal:
    """A signal in PromQL: ``value`` is labelled by the service's labels (or the process's);
    ``present`` is a cheap expression with the same group labels and caches (where the
    lookup's fallbacks take their labels from); ``guard`` a condition ``and``-ed to it."""

    value: str
    present: str
    guard: str = ""


def signal(reads: str, config: BundleSettings) -> Signal:
    """The PromQL of a signal, or of a catalogued metric (a gauge as it is, per process; a
    counter as its rate over the rate window, per service)."""
    v = q.vocabulary(config)
    memory, limit = c.MEMORY.name, c.MEMORY_LIMIT.name
    trend = format_duration(config.trend_window)
    recorded = {
        "request_rate": v.REQUESTS,
        "memory_limit_ratio": v.MEMORY_LIMIT_RATIO,
        "error_ratio": v.ERROR_RATIO,
        "eviction_ratio": v.EVICTION_RATIO,
        "latency_p99_seconds": v.latency_quantile(0.99),
    }
    if reads in recorded:
        return Signal(recorded[reads], recorded[reads])
    if reads == "hit_ratio":
        idle = q.fmt_number(config.hit_ratio_min_request_rate)
        # The idle-cache guard: a cache serving too few lookups never alerts.
        return Signal(v.HIT_RATIO, v.HIT_RATIO, f"and on ({v.SERVICE}) {v.REQUESTS} >= {idle}")
    if reads == "memory_bytes":
        return Signal(f"max by ({v.PROCESS}) ({memory})", memory)
    if reads == "memory_full_seconds":
        # Seconds until the limit at the least-squares growth over the trend window (0 when
        # already there), as the exporter forecasts it; only while growing.
        return Signal(
            f"max by ({v.PROCESS}) (clamp_min(({limit} > 0) - {memory}, 0)"
            f" / (deriv({memory}[{trend}]) > 0))",
            limit,
        )
    if reads == "cleanup_overdue_factor":
        return Signal(v.cleanup_overdue_expr(), c.LAST_CLEANUP.name)
    spec = c.BY_NAME.get(reads)
    if spec is not None and spec in c.ALERTABLE:
        if spec.type == "counter":
            return Signal(v.rate(spec.name), spec.name)
        return Signal(f"max by ({v.PROCESS}) ({spec.name})", spec.name)
    raise ValueError(f"no PromQL for what an alert reads: {reads!r}")


THRESHOLD = "cache:alert_threshold"
"""The recorded threshold in force, by group labels, cache, alertname and severity."""
ESCALATION = "cache:alert_escalation"
"""The recorded escalation switch (1 on, 0 off), by group labels, cache and alertname."""


def configured(
    config: BundleSettings, metric: str, selector: str, default: float, present: str
) -> str:
    """The value in force per group labels and cache: the exporter's series for the cache,
    else its default series (``cache=""``), else ``default``; ``present`` names the group
    labels and caches that need one."""
    v = q.vocabulary(config)
    service, groups = v.SERVICE, ", ".join(config.group_labels)
    each = f"group by ({service}) ({present})"
    return (
        f'max by ({service}) ({metric}{{{selector},cache!=""}})\n'
        f"or on ({service}) {each} * on ({groups}) group_left ()"
        f' max by ({groups}) ({metric}{{{selector},cache=""}})\n'
        f"or on ({service}) {each} * {q.fmt_number(default)}"
    )


def threshold_selector(definition: AlertDefinition, threshold: Threshold) -> str:
    return f'alertname="{definition.name}",severity="{threshold.severity}"'


def lookup_rules(
    definitions: list[AlertDefinition], config: BundleSettings
) -> list[dict[str, object]]:
    """The recording rules of the thresholds and escalation switches in force."""
    rules: list[dict[str, object]] = []
    for d in definitions:
        if not d.per_cache:
            continue
        present = signal(d.signal, config).present
        for t in d.thresholds:
            rules.append(
                {
                    "record": THRESHOLD,
                    "expr": configured(
                        config, c.ALERT_THRESHOLD.name, threshold_selector(d, t), t.value, present
                    ),
                    "labels": {"alertname": d.name, "severity": t.severity},
                }
            )
        if can_escalate(d):
            rules.append(
                {
                    "record": ESCALATION,
                    "expr": configured(
                        config,
                        c.ALERT_ESCALATION.name,
                        f'alertname="{d.name}"',
                        1.0 if d.escalates else 0.0,
                        present,
                    ),
                    "labels": {"alertname": d.name},
                }
            )
    return rules


def condition(definition: AlertDefinition, threshold: Threshold, config: BundleSettings) -> str:
    """The alert's condition at ``threshold``'s severity; its value is the signal's."""
    s = signal(definition.signal, config)
    v = q.vocabulary(config)
    recorded = f"{THRESHOLD}{{{threshold_selector(definition, threshold)}}}"
    expr = f"{s.value}\n  {definition.operator} on ({v.SERVICE}) group_left () {recorded}"
    return f"{expr}\n{s.guard}" if s.guard else expr


def escalation(definition: AlertDefinition, warning: str, config: BundleSettings) -> str:
    """The condition of the escalated rule: the warning's, while escalation is on for the
    cache (the exporter's series, else ``definition.escalates``)."""
    v = q.vocabulary(config)
    inner = warning.replace("\n", "\n  ")
    switch = f'{ESCALATION}{{alertname="{definition.name}"}}'
    return f"(\n  {inner}\n)\nand on ({v.SERVICE}) ({switch} == 1)"


def source_down(config: BundleSettings) -> str:
    """CacheSourceDown's condition: a source whose last poll failed (no threshold)."""
    by = ", ".join((*config.group_labels, "instance", "source"))
    return f"max by ({by}) ({c.SOURCE_UP.name}) == 0"


def threshold_query(
    definition: AlertDefinition, threshold: Threshold, config: BundleSettings
) -> str:
    """The query an annotation template runs for the threshold in force for the alert's
    cache (Go ``printf`` format; ``threshold_args`` are its arguments)."""
    service = ",".join(f"{label}=%q" for label in config.group_labels)
    return f"{THRESHOLD}{{{threshold_selector(definition, threshold)},{service},cache=%q}}"


def threshold_args(config: BundleSettings) -> str:
    return " ".join(f"$labels.{label}" for label in (*config.group_labels, "cache"))
