"""promtool unit tests of the generated alert rules, derived from the same thresholds.

Each alert gets scenarios that must fire (warning, critical), must stay pending before its
``for``, must escalate when a warning persists, and must not fire (healthy values, and the
idle-cache guard of CacheHitRatioLow). Inputs are chosen so the values Prometheus renders
into the annotations are exact, because promtool compares annotations verbatim.
"""

from __future__ import annotations

import copy
import math
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import catalog as c
from ..analysis.definitions import CRITICAL, WARNING, AlertDefinition, alert_definitions
from ..config.settings import BundleSettings
from ..config.values import format_duration
from ..exposition.encoders import floatToGoString
from . import promql as q
from .conditions import per_process
from .rules import (
    VALUE_TEMPLATES,
    AlertRule,
    cache_alert_rules,
    redis_and_exporter_rules,
    render_rule,
    render_value,
)

CACHE = "c1"
STEP = 60  # seconds between input samples and rule evaluations
SERVICE_NAMES = {
    "job": ("search-api", "ranking-api"),
    "cluster": ("eu-1", "us-1"),
    "namespace": ("shop", "search"),
}


def service_labels(config: BundleSettings, index: int) -> dict[str, str]:
    """The group labels of test service ``index`` (0 or 1): they differ in every label."""
    return {
        label: SERVICE_NAMES.get(label, (f"{label}-a", f"{label}-b"))[index]
        for label in config.group_labels
    }


def instance_name(service: int, replica: int) -> str:
    return f"{('search', 'ranking')[service]}-{replica}:8000"


@dataclass
class Scenario:
    """Input series and the alerts expected at some evaluation times."""

    name: str
    series: dict[str, str]
    checks: list[tuple[float, str, list[dict[str, Any]]]] = field(default_factory=list)

    def render(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "interval": format_duration(STEP),
            "input_series": [{"series": s, "values": v} for s, v in self.series.items()],
            "alert_rule_test": [
                {"eval_time": format_duration(t), "alertname": name, "exp_alerts": alerts}
                for t, name, alerts in self.checks
            ],
        }


def series_labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def linear(start: float, per_step: float, steps: int) -> str:
    return f"{q.fmt_number(start)}+{q.fmt_number(per_step)}x{steps}"


def expected_alert(
    rule: AlertRule,
    config: BundleSettings,
    value: float,
    labels: dict[str, str],
    threshold: float | None = None,
) -> dict[str, Any]:
    """The alert promtool must see: ``threshold`` is the one the exporter publishes for the
    cache, None when the scenario publishes none (the generated one is shown)."""
    rendered = render_rule(rule, config)
    text = render_value_text(rule, value)
    limit = rule.threshold_default if threshold is None else render_value_text(rule, threshold)
    annotations = {}
    for key, template in rendered["annotations"].items():
        out = template
        if rule.threshold_default and rule.value != "down":  # a template: what it renders
            out = out.replace(rule.threshold, limit)
        if rule.value != "down":
            out = out.replace(rule.value, text)
        annotations[key] = _LABEL_REF.sub(lambda m: _label_text(m, labels), out)
    return {"exp_labels": {**labels, **rendered["labels"]}, "exp_annotations": annotations}


_LABEL_REF = re.compile(r"\{\{ \$labels\.(\w+)( \| urlquery)? \}\}")


def _label_text(match: re.Match[str], labels: dict[str, str]) -> str:
    """What Prometheus renders for ``{{ $labels.x }}`` (``urlquery``: Go's QueryEscape)."""
    value = labels.get(match.group(1), "")
    return urllib.parse.quote_plus(value) if match.group(2) else value


def render_value_text(rule: AlertRule, value: float) -> str:
    for unit, template in VALUE_TEMPLATES.items():
        if rule.value == template and unit != "bool":
            return render_value(unit, value)
    return f"{value:g}"


class _Builder:
    """Collects scenarios for one alert definition with the rules generated for it."""

    def __init__(self, config: BundleSettings, definition: AlertDefinition) -> None:
        self.config = config
        self.d = definition
        self.rules = [r for r in cache_alert_rules(config) if r.alert == definition.name]
        self.wait = definition.thresholds[0].for_seconds
        self.escalate = self.wait + config.alert_escalate_after_seconds
        self.scenarios: list[Scenario] = []
        self.service = service_labels(config, 0)
        self.target = {**self.service, "instance": instance_name(0, 0)}
        """The labels of the scraped target every input series carries."""
        self.alerted = {**self.service, "cache": CACHE}
        if per_process(definition.signal):
            self.alerted["instance"] = self.target["instance"]
        # The rate window fully covered by samples, plus one evaluation.
        self.settle = config.alert_rate_window + STEP

    def steps(self, until: float) -> int:
        return math.ceil(until / STEP) + 2

    def rule(self, severity: str, escalated: bool = False) -> AlertRule:
        for r in self.rules:
            if r.severity == severity and bool(r.extra_labels) == escalated:
                return r
        raise LookupError(f"{self.d.name} has no {severity} rule")

    def expect(
        self,
        value: float,
        labels: dict[str, str],
        *which: tuple[str, bool],
        shown: Mapping[str, float] | None = None,
    ) -> list[Any]:
        """The alerts of ``which`` (severity, escalated); ``shown`` are the thresholds the
        scenario's exporter publishes by severity (the escalated rule shows the warning's)."""
        shown = shown or {}
        return [
            expected_alert(
                self.rule(s, e), self.config, value, labels, shown.get(WARNING if e else s)
            )
            for s, e in which
        ]

    def add(
        self,
        name: str,
        series: dict[str, str],
        value: float,
        labels: dict[str, str],
        severities: tuple[str, ...],
        true_from: float = 0.0,
        shown: Mapping[str, float] | None = None,
    ) -> None:
        """A condition that holds from ``true_from`` on: pending, firing, then escalated."""
        fire_at = max(true_from + self.wait + 2 * STEP, self.settle)
        which = [(s, False) for s in severities]
        checks: list[tuple[float, str, list[Any]]] = []
        if self.wait >= 2 * STEP and true_from + self.wait - STEP >= self.settle:
            checks.append((true_from + self.wait - STEP, self.d.name, []))
        checks.append((fire_at, self.d.name, self.expect(value, labels, *which, shown=shown)))
        if self.d.escalates and WARNING in severities:
            when = true_from + self.escalate + 2 * STEP
            escalated = self.expect(value, labels, *which, (CRITICAL, True), shown=shown)
            checks.append((when, self.d.name, escalated))
        self.scenarios.append(Scenario(f"{self.d.name}: {name}", series, checks))

    def published(
        self, metric: str, value: float, steps: int, cache: str | None = None, **labels: str
    ) -> dict[str, str]:
        """A series the scenario's exporter publishes (a threshold, an escalation switch):
        the target's labels, ``cache`` where it is the cache's own (else the default)."""
        own = {"cache": cache} if cache is not None else {}
        key = metric + series_labels(**self.target, alertname=self.d.name, **labels, **own)
        return {key: f"{q.fmt_number(value)}x{steps}"}

    def quiet(self, name: str, series: dict[str, str], at: float | None = None) -> None:
        when = at if at is not None else max(self.escalate, self.wait) + 2 * STEP
        self.scenarios.append(Scenario(f"{self.d.name}: {name}", series, [(when, self.d.name, [])]))


def _horizon(config: BundleSettings) -> float:
    return config.alert_for_seconds + config.alert_escalate_after_seconds + 4 * STEP


def _hit_ratio(b: _Builder, cfg: BundleSettings) -> None:
    total = max(100, math.ceil(cfg.hit_ratio_min_request_rate * 4 * 60 / 100) * 100)
    n = b.steps(_horizon(cfg))
    gets = c.CACHE_GETS.name

    def series(hits: int, misses: int) -> dict[str, str]:
        return {
            gets + series_labels(**b.target, cache=CACHE, result="hit"): linear(10**6, hits, n),
            gets + series_labels(**b.target, cache=CACHE, result="miss"): linear(10**6, misses, n),
        }

    warn, crit = cfg.hit_ratio_warning, cfg.hit_ratio_critical
    # While the 5m window fills, rate() extrapolates half a step back: at t minutes the
    # request rate is total * (t + 0.5) / window, which must reach the idle guard's rate.
    window = cfg.alert_rate_window
    ramp = max(1, math.ceil(window * cfg.hit_ratio_min_request_rate / total - 0.5)) * STEP
    if crit < warn:
        hits = math.floor((warn + crit) / 2 * total)
        b.add(
            "warning between the thresholds",
            series(hits, total - hits),
            hits / total,
            b.alerted,
            (WARNING,),
            ramp,
        )
    if crit > 0:
        hits = math.floor(crit / 2 * total)
        b.add(
            "critical below the critical threshold",
            series(hits, total - hits),
            hits / total,
            b.alerted,
            (WARNING, CRITICAL),
            ramp,
        )
    hits = math.ceil((1 + warn) / 2 * total)
    b.quiet("healthy hit ratio", series(hits, total - hits))
    if hits < total:  # a warning threshold raised at run time above the healthy ratio
        raised = (hits / total + 1) / 2
        steps = b.steps(_horizon(cfg))
        published = b.published(c.ALERT_THRESHOLD.name, raised, steps, CACHE, severity=WARNING)
        b.add(
            "the cache's warning threshold raised above its hit ratio",
            series(hits, total - hits) | published,
            hits / total,
            b.alerted,
            (WARNING,),
            ramp,
            shown={WARNING: raised},
        )
    idle = math.floor(cfg.hit_ratio_min_request_rate * 60 / 2)
    if idle >= 1:
        b.quiet("idle cache never alerts", series(0, idle))


def _memory(b: _Builder, cfg: BundleSettings) -> None:
    mb = 1024 * 1024
    n = b.steps(_horizon(cfg))
    metric = c.MEMORY.name + series_labels(**b.target, cache=CACHE)
    w, k = cfg.memory_warning_mb * mb, cfg.memory_critical_mb * mb
    if k > w:
        value = math.floor((w + k) / 2)
        b.add(
            "warning between the thresholds",
            {metric: f"{value}x{n}"},
            value,
            b.alerted,
            (WARNING,),
        )
    value = math.floor(k * 1.5) + 1
    b.add(
        "critical above the critical threshold",
        {metric: f"{value}x{n}"},
        value,
        b.alerted,
        (WARNING, CRITICAL),
    )
    b.quiet("below the warning threshold", {metric: f"{math.floor(w / 2)}x{n}"})


def _near_limit(b: _Builder, cfg: BundleSettings) -> None:
    n = b.steps(_horizon(cfg))
    limit = 1000 * 1024 * 1024
    mem, lim = (
        c.MEMORY.name + series_labels(**b.target, cache=CACHE),
        c.MEMORY_LIMIT.name + series_labels(**b.target, cache=CACHE),
    )
    ratio = (1 + cfg.memory_near_limit_ratio) / 2
    b.add(
        "above the share of its limit",
        {mem: f"{round(limit * ratio)}x{n}", lim: f"{limit}x{n}"},
        round(limit * ratio) / limit,
        b.alerted,
        (WARNING,),
    )
    b.quiet("well below its limit", {mem: f"{round(limit * ratio / 2)}x{n}", lim: f"{limit}x{n}"})
    b.quiet("no limit configured", {mem: f"{limit}x{n}"})


def _full_soon(b: _Builder, cfg: BundleSettings) -> None:
    horizon = _horizon(cfg)
    n = b.steps(horizon)
    per_second = 4096
    mem, lim = (
        c.MEMORY.name + series_labels(**b.target, cache=CACHE),
        c.MEMORY_LIMIT.name + series_labels(**b.target, cache=CACHE),
    )
    start = 10**8
    within = cfg.memory_full_soon_seconds
    # Full within the window from the first evaluation to past the escalation.
    end = n * STEP
    limit = start + per_second * (end + within / 4)
    if end > within * 0.75:
        limit = start + per_second * (STEP + within * 0.9)
    growth = {mem: linear(start, per_second * STEP, n), lim: f"{q.fmt_number(limit)}x{n}"}
    b.add("growing toward its limit", growth, 0.0, b.alerted, (WARNING,), STEP)
    # Fill in the exact forecast at each check: (limit - memory) / slope.
    scenario = b.scenarios[-1]
    for t, _, alerts in scenario.checks:
        for alert in alerts:
            seconds = (limit - (start + per_second * t)) / per_second
            alert.update(_expected_for(b, alert, seconds))
    slow = start + per_second * within * 3 + per_second * end
    b.quiet(
        "growing, but full later than the threshold",
        {mem: linear(start, per_second * STEP, n), lim: f"{q.fmt_number(slow)}x{n}"},
    )
    b.quiet("flat memory near the limit", {mem: f"{start}x{n}", lim: f"{start + 1}x{n}"})


def _expected_for(b: _Builder, alert: dict[str, Any], value: float) -> dict[str, Any]:
    escalated = alert["exp_labels"].get("escalated") == "true"
    rule = b.rule(alert["exp_labels"]["severity"], escalated)
    return expected_alert(rule, b.config, value, b.alerted)


def _errors(b: _Builder, cfg: BundleSettings) -> None:
    n = b.steps(_horizon(cfg))
    total = 1000

    def series(errors: int) -> dict[str, str]:
        out = {
            c.CACHE_GETS.name + series_labels(**b.target, cache=CACHE, result="hit"): linear(
                10**6, total, n
            ),
            c.CACHE_GETS.name + series_labels(**b.target, cache=CACHE, result="miss"): f"0x{n}",
            c.CACHE_PUTS.name + series_labels(**b.target, cache=CACHE): f"0x{n}",
            c.CACHE_REMOVALS.name + series_labels(**b.target, cache=CACHE): f"0x{n}",
        }
        if errors:
            key = c.ERRORS.name + series_labels(
                **b.target, cache=CACHE, operation="get", error="OSError"
            )
            out[key] = linear(1000, errors, n)
        return out

    w, k = cfg.error_ratio_warning, cfg.error_ratio_critical
    if k > w:
        e = math.floor((w + k) / 2 * total)
        b.add("warning between the thresholds", series(e), e / total, b.alerted, (WARNING,))
    e = min(total, math.floor((1 + k) / 2 * total))
    b.add(
        "critical above the critical threshold",
        series(e),
        e / total,
        b.alerted,
        (WARNING, CRITICAL),
    )
    b.quiet("few errors", series(math.floor(w / 2 * total)))
    b.quiet("no error series at all", series(0))


def _evictions(b: _Builder, cfg: BundleSettings) -> None:
    n = b.steps(_horizon(cfg))
    puts = 100

    def series(evictions: int, put: int = puts) -> dict[str, str]:
        return {
            c.CACHE_PUTS.name + series_labels(**b.target, cache=CACHE): linear(10**6, put, n),
            c.CACHE_EVICTIONS.name + series_labels(**b.target, cache=CACHE): linear(
                10**5, evictions, n
            ),
        }

    w = cfg.eviction_ratio_warning
    e = max(1, math.ceil(w * 2 * puts))
    b.add("evicting a large share of puts", series(e), e / puts, b.alerted, (WARNING,))
    b.quiet("few evictions", series(math.floor(w / 2 * puts)))
    b.quiet("no puts at all", series(0, 0))


def _latency(b: _Builder, cfg: BundleSettings) -> None:
    n = b.steps(_horizon(cfg))
    bounds = catalog_bounds()
    t = cfg.latency_p99_warning_seconds
    bucket = c.OPERATION_DURATION.name + "_bucket"

    def series(index: int) -> dict[str, str]:
        lower, upper = bounds[index - 1], bounds[index]
        out = {}
        for le in (lower, upper):
            count = 0 if le == lower else 100
            out[
                bucket
                + series_labels(**b.target, cache=CACHE, operation="get", le=floatToGoString(le))
            ] = linear(10**6 if count else 0, count, n)
        out[bucket + series_labels(**b.target, cache=CACHE, operation="get", le="+Inf")] = linear(
            10**6, 100, n
        )
        return out

    slow = next(i for i, v in enumerate(bounds) if i > 0 and bounds[i - 1] >= t)
    lower, upper = bounds[slow - 1], bounds[slow]
    p99 = lower + (upper - lower) * 0.99
    labels = {**b.alerted, "operation": "get"}
    b.add("slow operations", series(slow), p99, labels, (WARNING,))
    fast = max(i for i, v in enumerate(bounds) if i > 0 and v <= t / 2)
    b.quiet("fast operations", series(fast))


def catalog_bounds() -> tuple[float, ...]:
    return c.LATENCY_BUCKETS


def _cleanup(b: _Builder, cfg: BundleSettings) -> None:
    window = 360  # the 6h cleanup window, in one-minute steps
    f = cfg.cleanup_stalled_factor
    # Cleanups every minute for 6h, then none: after d minutes the factor is d(360-d)/360.
    stall = next((d for d in range(1, 180) if d * (window - d) / window > f), None)
    if stall is None:
        return
    extra = math.ceil((_horizon(cfg) + stall * STEP) / STEP) + 4
    counter = c.CLEANUPS.name + series_labels(**b.target, cache=CACHE, trigger="scheduled")
    stamp = c.LAST_CLEANUP.name + series_labels(**b.target, cache=CACHE)
    series = {
        counter: f"1000+1x{window} {1000 + window}x{extra}",
        stamp: f"0+60x{window} {window * 60}x{extra}",
    }
    start = window * STEP + stall * STEP
    b.add("no cleanup for a while", series, 0.0, b.alerted, (WARNING,), start - STEP * 0)
    scenario = b.scenarios[-1]
    for when, _, alerts in scenario.checks:
        d = round((when - window * STEP) / STEP)
        for alert in alerts:
            alert.update(_expected_for(b, alert, d * (window - d) / window))
    regular = {
        counter: f"1000+1x{window + extra}",
        stamp: f"0+60x{window + extra}",
    }
    b.quiet("regular cleanups", regular, at=start + b.escalate)


def _source(b: _Builder, cfg: BundleSettings) -> None:
    n = b.steps(_horizon(cfg))
    up = c.SOURCE_UP.name + series_labels(**b.target, source="redis")
    b.add("source down", {up: f"0x{n}"}, 0.0, {**b.target, "source": "redis"}, (CRITICAL,))
    b.quiet("source up", {up: f"1x{n}"})


SCENARIOS = {
    "hit_ratio": _hit_ratio,
    "memory_bytes": _memory,
    "memory_limit_ratio": _near_limit,
    "memory_full_seconds": _full_soon,
    "error_ratio": _errors,
    "eviction_ratio": _evictions,
    "latency_p99_seconds": _latency,
    "cleanup_overdue_factor": _cleanup,
    "source_up": _source,
}


NEVER = 10**18
"""A threshold no signal passes: above it for the alerts that fire above, its negative for
those that fire below."""


EXPORTED = {
    "CacheHitRatioLow": True,
    "CacheMemoryHigh": False,
    "CacheLatencyHigh": False,
}
"""The alerts whose scenarios are run again with thresholds the exporter publishes (and,
where True, its escalation switch): one of each shape of join (a service's signal with a
guard, a process's signal with two severities, a signal per operation). Every alert's
lookup is made by the same code; the others are checked for reading their own lookup."""


def _exported(b: _Builder) -> None:
    """The thresholds in force come from the exporter: its default wins over the generated
    threshold, a cache's own wins over its default, and its escalation switch holds."""
    d = b.d
    firing = next((s for s in b.scenarios if any(alerts for _, _, alerts in s.checks)), None)
    if firing is None or d.name not in EXPORTED:
        return
    steps = math.ceil(max(t for t, _, _ in firing.checks) / STEP) + 2
    never = NEVER if d.above else -NEVER
    threshold = c.ALERT_THRESHOLD.name
    defaults: dict[str, str] = {}
    own: dict[str, str] = {}
    for t in d.thresholds:
        defaults |= b.published(threshold, never, steps, severity=t.severity)
        own |= b.published(threshold, t.value, steps, CACHE, severity=t.severity)

    def clone(name: str, series: dict[str, str], keep: Any) -> None:
        checks = [(t, a, [x for x in alerts if keep(x)]) for t, a, alerts in firing.checks]
        b.scenarios.append(
            Scenario(f"{d.name}: {name}", {**firing.series, **series}, copy.deepcopy(checks))
        )

    clone("the exporter's default threshold wins over the generated one", defaults, lambda _: 0)
    clone("a cache's own threshold wins over the exporter's default", defaults | own, bool)
    escalates = any(x["exp_labels"].get("escalated") for _, _, xs in firing.checks for x in xs)
    if escalates and EXPORTED[d.name]:
        switch = c.ALERT_ESCALATION.name
        off = b.published(switch, 0, steps)
        clone(
            "the exporter turned escalation off",
            off,
            lambda x: x["exp_labels"].get("escalated") != "true",
        )
        clone(
            "escalation off, but on for the cache", off | b.published(switch, 1, steps, CACHE), bool
        )


def cache_alert_tests(config: BundleSettings) -> dict[str, Any]:
    tests: list[dict[str, Any]] = []
    for definition in alert_definitions(config):
        builder = _Builder(config, definition)
        if definition.custom is not None:
            from .custom_tests import custom_scenarios  # it builds on this module's builder

            custom_scenarios(builder, config)
        else:
            SCENARIOS[definition.signal](builder, config)
        _exported(builder)
        tests += [s.render() for s in builder.scenarios]
    return {
        "rule_files": ["../rules/cachewatch-recording.yml", "../rules/cachewatch-alerts.yml"],
        "evaluation_interval": format_duration(STEP),
        "tests": tests,
    }


def _topology_tests(
    config: BundleSettings,
    one: Callable[..., dict[str, Any]],
    inst: dict[str, str],
    n: int,
) -> list[dict[str, Any]]:
    """Fires and must-not-fire cases of the replication, Sentinel and Cluster alerts."""
    link = {**inst, "master_host": "10.0.0.1", "master_port": "6379"}
    replica = {**inst, "slave_ip": "10.0.0.2", "slave_port": "6379", "slave_state": "online"}
    watched = {**inst, "master_name": "cache-primary", "master_address": "10.0.0.1:6379"}
    down = {**watched, "master_status": "sdown"}
    lag = config.redis_replica_lag_seconds
    few = max(0, config.redis_min_sentinels - 1)
    window_steps = math.ceil(config.redis_replicas_window / STEP)
    settle = max(1, 9 - window_steps)
    links = c.REDIS_MASTER_LINK_UP.name
    lags = c.REDIS_CONNECTED_SLAVE_LAG.name
    slaves = c.info_metric("redis_connected_slaves")
    status = c.REDIS_SENTINEL_MASTER_STATUS.name
    ok_sentinels = c.REDIS_SENTINEL_MASTER_OK_SENTINELS.name
    state = c.cluster_info_metric("redis_cluster_state")
    fail, pfail = (c.cluster_info_metric(f"redis_cluster_slots_{k}") for k in ("fail", "pfail"))
    return [
        one("RedisReplicationBroken", {links + series_labels(**link): f"0x{n}"}, link),
        one("RedisReplicationBroken", {links + series_labels(**link): f"1x{n}"}, None),
        one(
            "RedisReplicaLagHigh",
            {lags + series_labels(**replica): f"{q.fmt_number(lag + 15)}x{n}"},
            replica,
            lag + 15,
        ),
        one("RedisReplicaLagHigh", {lags + series_labels(**replica): f"1x{n}"}, None),
        one(
            "RedisReplicasDisconnected",
            {slaves + series_labels(**inst): f"2x{settle} 1x{n}"},
            inst,
            1.0,
        ),
        one("RedisReplicasDisconnected", {slaves + series_labels(**inst): f"2x{n}"}, None),
        one("RedisSentinelMasterNotOk", {status + series_labels(**down): f"0x{n}"}, down),
        one(
            "RedisSentinelMasterNotOk",
            {status + series_labels(**watched, master_status="ok"): f"1x{n}"},
            None,
        ),
        one(
            "RedisSentinelsTooFew",
            {ok_sentinels + series_labels(**watched): f"{few}x{n}"},
            watched,
            float(few),
        ),
        one(
            "RedisSentinelsTooFew",
            {ok_sentinels + series_labels(**watched): f"{config.redis_min_sentinels}x{n}"},
            None,
        ),
        one("RedisClusterStateNotOk", {state + series_labels(**inst): f"0x{n}"}, inst),
        one("RedisClusterStateNotOk", {state + series_labels(**inst): f"1x{n}"}, None),
        one(
            "RedisClusterSlotsFailing",
            {fail + series_labels(**inst): f"0x{n}", pfail + series_labels(**inst): f"5x{n}"},
            inst,
            5.0,
        ),
        one(
            "RedisClusterSlotsFailing",
            {fail + series_labels(**inst): f"0x{n}", pfail + series_labels(**inst): f"0x{n}"},
            None,
        ),
    ]


def redis_alert_tests(config: BundleSettings) -> dict[str, Any]:
    by_name = {r.alert: r for r in redis_and_exporter_rules(config)}
    n = 20
    exporter = {**service_labels(config, 0), "job": "cachewatch", "instance": "exporter:10287"}
    inst = {**exporter, "instance": "redis:6379"}

    def one(
        alert: str, series: dict[str, str], labels: dict[str, str] | None, value: float = 0.0
    ) -> dict[str, Any]:
        expected = [] if labels is None else [expected_alert(by_name[alert], config, value, labels)]
        return Scenario(
            f"{alert}: {'fires' if labels is not None else 'quiet'}",
            series,
            [(10 * STEP, alert, expected)],
        ).render()

    up = series_labels(**exporter)
    tests = [
        one("CachewatchExporterDown", {"up" + up: f"0x{n}"}, exporter),
        one(
            "CachewatchExporterDown",
            {
                "up" + up: f"1x{n}",
                "up" + series_labels(job="prometheus", instance="localhost:9090"): f"0x{n}",
            },
            None,
        ),
        one("RedisDown", {"redis_up" + series_labels(**inst): f"0x{n}"}, inst),
        one("RedisDown", {"redis_up" + series_labels(**inst): f"1x{n}"}, None),
        one(
            "RedisMemoryNearMax",
            {
                "redis_memory_used_bytes" + series_labels(**inst): f"950x{n}",
                "redis_memory_max_bytes" + series_labels(**inst): f"1000x{n}",
            },
            inst,
            0.95,
        ),
        one(
            "RedisMemoryNearMax",
            {
                "redis_memory_used_bytes" + series_labels(**inst): f"950x{n}",
                "redis_memory_max_bytes" + series_labels(**inst): f"0x{n}",
            },
            None,
        ),
        one(
            "RedisRejectedConnections",
            {"redis_rejected_connections_total" + series_labels(**inst): f"0+1x{n}"},
            inst,
            5.0,
        ),
        one(
            "RedisRejectedConnections",
            {"redis_rejected_connections_total" + series_labels(**inst): f"3x{n}"},
            None,
        ),
        *_topology_tests(config, one, inst, n),
    ]
    return {
        "rule_files": ["../rules/cachewatch-alerts.yml", "../rules/redis-alerts.yml"],
        "evaluation_interval": format_duration(STEP),
        "tests": tests,
    }
