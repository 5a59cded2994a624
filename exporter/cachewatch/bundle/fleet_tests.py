"""promtool unit tests of the generated rules over a fleet: two services, three instances.

Service A runs two replicas, service B one; both have a cache of the same name. The cases
that must not merge (two services, two replicas holding memory, one replica's source) and
the cases that must still aggregate (a service's hit ratio and its idle guard are over all
its replicas) are what a rule aggregating by the wrong labels gets wrong.
"""

from __future__ import annotations

import math
from typing import Any

from .. import catalog as c
from ..analysis.definitions import CRITICAL, WARNING
from ..config.settings import BundleSettings
from ..config.values import format_duration
from . import promql as q
from .rule_tests import (
    CACHE,
    STEP,
    Scenario,
    expected_alert,
    instance_name,
    linear,
    series_labels,
    service_labels,
)
from .rules import AlertRule, cache_alert_rules, redis_and_exporter_rules

HIT_RATIO, MEMORY, SOURCE = "CacheHitRatioLow", "CacheMemoryHigh", "CacheSourceDown"


class _Fleet:
    """The three targets and the expected alerts at one evaluation time."""

    def __init__(self, config: BundleSettings) -> None:
        self.config = config
        self.a, self.b = service_labels(config, 0), service_labels(config, 1)
        self.a0 = {**self.a, "instance": instance_name(0, 0)}
        self.a1 = {**self.a, "instance": instance_name(0, 1)}
        self.b0 = {**self.b, "instance": instance_name(1, 0)}
        self.rules = cache_alert_rules(config) + redis_and_exporter_rules(config)[:1]
        horizon = config.alert_rate_window + config.alert_for_seconds + 4 * STEP
        self.steps = math.ceil(horizon / STEP) + 2

    def at(self, alert: str, since: float) -> float:
        """When ``alert``, true from ``since`` on, fires for sure (its ``for`` plus 2 steps)."""
        wait = max(r.for_seconds for r in self._rules(alert) if not r.extra_labels)
        return since + wait + 2 * STEP

    def since(self, per_minute: float) -> float:
        """The first evaluation at which a service serving ``per_minute`` lookups passes the
        idle guard: while the rate window fills, rate() extrapolates half a step back."""
        window = self.config.alert_rate_window
        minimum = self.config.hit_ratio_min_request_rate
        return max(1, math.ceil(window * minimum / per_minute - 0.5)) * STEP

    def firing(
        self,
        alert: str,
        labels: dict[str, str],
        value: float,
        severities: tuple[str, ...],
        since: float = 0.0,
    ) -> list[dict[str, Any]]:
        """The alerts of ``alert`` at ``labels`` firing at ``self.at``, escalations too."""
        at = self.at(alert, since)
        out = []
        for rule in self._rules(alert):
            escalated = bool(rule.extra_labels)
            wanted = WARNING in severities if escalated else rule.severity in severities
            if wanted and at - since >= rule.for_seconds:
                out.append(expected_alert(rule, self.config, value, labels))
        return out

    def _rules(self, alert: str) -> list[AlertRule]:
        return [r for r in self.rules if r.alert == alert]

    def scenario(
        self,
        name: str,
        series: dict[str, str],
        alert: str,
        expected: list[dict[str, Any]],
        since: float = 0.0,
    ) -> dict[str, Any]:
        return Scenario(
            f"fleet: {name}", series, [(self.at(alert, since), alert, expected)]
        ).render()

    def lookups(self, target: dict[str, str], hits: int, misses: int) -> dict[str, str]:
        gets = c.CACHE_GETS.name
        start, n = 10**6, self.steps
        return {
            gets + series_labels(**target, cache=CACHE, result="hit"): linear(start, hits, n),
            gets + series_labels(**target, cache=CACHE, result="miss"): linear(start, misses, n),
        }


def _hit_ratio(f: _Fleet) -> list[dict[str, Any]]:
    cfg = f.config
    per_minute = max(600, math.ceil(cfg.hit_ratio_min_request_rate * 60) * 10)
    low = math.floor(cfg.hit_ratio_critical / 2 * per_minute)
    target = (1 + cfg.hit_ratio_warning) / 2
    # Service B serves so much more that merged with A the ratio would look healthy.
    ratio_a = low / per_minute
    heavy = math.ceil((2 * target - 2 * ratio_a) / (1 - target)) + 1
    severities = (WARNING, CRITICAL) if low / per_minute < cfg.hit_ratio_critical else (WARNING,)
    since = f.since(2 * per_minute)
    tests = [
        f.scenario(
            "two services with the same cache never merge",
            {
                **f.lookups(f.a0, low, per_minute - low),
                **f.lookups(f.a1, low, per_minute - low),
                **f.lookups(f.b0, heavy * per_minute, 0),
            },
            HIT_RATIO,
            f.firing(HIT_RATIO, {**f.a, "cache": CACHE}, ratio_a, severities, since),
            since,
        )
    ]
    # One replica misses a lot, the other serves ten times more and hits: the service is fine.
    busy = 10 * per_minute
    tests.append(
        f.scenario(
            "the hit ratio of a service is over all its replicas",
            {
                **f.lookups(f.a0, low, per_minute - low),
                **f.lookups(f.a1, busy, 0),
            },
            HIT_RATIO,
            [],
            since,
        )
    )
    # The idle guard, too: each replica alone is idle, the service is not.
    minimum = cfg.hit_ratio_min_request_rate
    each = math.floor(minimum * 60 * 0.75)
    if minimum > 0 and each >= 1 and 2 * each / 60 >= minimum:
        since = f.since(2 * each)
        tests.append(
            f.scenario(
                "the idle guard counts the lookups of all replicas",
                {**f.lookups(f.a0, 0, each), **f.lookups(f.a1, 0, each)},
                HIT_RATIO,
                f.firing(HIT_RATIO, {**f.a, "cache": CACHE}, 0.0, (WARNING, CRITICAL), since),
                since,
            )
        )
    return tests


def _memory(f: _Fleet) -> list[dict[str, Any]]:
    mb = 1024 * 1024
    high = math.floor(f.config.memory_critical_mb * mb * 1.5) + 1
    low = math.floor(f.config.memory_warning_mb * mb / 2)
    metric = c.MEMORY.name
    series = {
        metric + series_labels(**f.a0, cache=CACHE): f"{high}x{f.steps}",
        metric + series_labels(**f.a1, cache=CACHE): f"{low}x{f.steps}",
        metric + series_labels(**f.b0, cache=CACHE): f"{high}x{f.steps}",
    }
    both = (WARNING, CRITICAL)
    expected = f.firing(MEMORY, {**f.a0, "cache": CACHE}, high, both)
    expected += f.firing(MEMORY, {**f.b0, "cache": CACHE}, high, both)
    return [f.scenario("memory alerts name the replica that holds it", series, MEMORY, expected)]


def _source(f: _Fleet) -> list[dict[str, Any]]:
    up = c.SOURCE_UP.name
    series = {
        up + series_labels(**f.a0, source="redis"): f"1x{f.steps}",
        up + series_labels(**f.a1, source="redis"): f"0x{f.steps}",
        up + series_labels(**f.b0, source="redis"): f"1x{f.steps}",
    }
    expected = f.firing(SOURCE, {**f.a1, "source": "redis"}, 0.0, (CRITICAL,))
    return [f.scenario("a source down names its replica", series, SOURCE, expected)]


def _exporter(f: _Fleet) -> list[dict[str, Any]]:
    exporter = {**f.a, "job": "cachewatch"}
    down = {**exporter, "instance": "exporter-1:10287"}
    series = {
        "up" + series_labels(**exporter, instance="exporter-0:10287"): f"1x{f.steps}",
        "up" + series_labels(**down): f"0x{f.steps}",
    }
    alert = "CachewatchExporterDown"
    return [
        f.scenario(
            "one exporter replica down is one alert",
            series,
            alert,
            f.firing(alert, down, 0.0, (CRITICAL,)),
        )
    ]


def _published(
    f: _Fleet, target: dict[str, str], alert: str, value: float, **labels: str
) -> dict[str, str]:
    """A threshold the exporter at ``target`` publishes (``cache=...`` for a cache's own)."""
    key = c.ALERT_THRESHOLD.name + series_labels(**target, alertname=alert, **labels)
    return {key: f"{q.fmt_number(value)}x{f.steps}"}


def _thresholds(f: _Fleet) -> list[dict[str, Any]]:
    """The thresholds in force are each service's own: those its exporters publish."""
    cfg = f.config
    per_minute = max(600, math.ceil(cfg.hit_ratio_min_request_rate * 60) * 10)
    hits = math.ceil((1 + cfg.hit_ratio_warning) / 2 * per_minute)
    ratio = hits / per_minute
    tests = []
    if hits < per_minute:
        raised = (ratio + 1) / 2
        series = {
            **f.lookups(f.a0, hits, per_minute - hits),
            **f.lookups(f.a1, hits, per_minute - hits),
            **f.lookups(f.b0, hits, per_minute - hits),
        }
        for target in (f.a0, f.a1):  # both replicas of A raised it for the cache
            series |= _published(f, target, HIT_RATIO, raised, severity=WARNING, cache=CACHE)
        series |= _published(f, f.b0, HIT_RATIO, cfg.hit_ratio_warning, severity=WARNING)
        since = f.since(2 * per_minute)
        rule = next(r for r in f._rules(HIT_RATIO) if r.severity == WARNING and not r.extra_labels)
        expected = [expected_alert(rule, cfg, ratio, {**f.a, "cache": CACHE}, raised)]
        tests.append(
            f.scenario(
                "one service's raised threshold applies to that service only",
                series,
                HIT_RATIO,
                expected,
                since,
            )
        )
    mb = 1024 * 1024
    held = math.floor(cfg.memory_warning_mb * mb / 2)
    lowered = held / 2
    metric = c.MEMORY.name
    series = {
        metric + series_labels(**f.a0, cache=CACHE): f"{held}x{f.steps}",
        metric + series_labels(**f.a1, cache=CACHE): f"{held}x{f.steps}",
        metric + series_labels(**f.b0, cache=CACHE): f"{held}x{f.steps}",
    }
    # Only A's first replica publishes the lowered default: it is A's threshold, for both.
    series |= _published(f, f.a0, MEMORY, lowered, severity=WARNING)
    rule = next(r for r in f._rules(MEMORY) if r.severity == WARNING and not r.extra_labels)
    expected = [
        expected_alert(rule, cfg, held, {**target, "cache": CACHE}, lowered)
        for target in (f.a0, f.a1)
    ]
    tests.append(
        f.scenario(
            "a service's threshold applies to each of its replicas", series, MEMORY, expected
        )
    )
    return tests


def fleet_alert_tests(config: BundleSettings) -> dict[str, Any]:
    fleet = _Fleet(config)
    tests = _hit_ratio(fleet) + _memory(fleet) + _source(fleet) + _exporter(fleet)
    tests += _thresholds(fleet)
    return {
        "rule_files": ["../rules/cachewatch-recording.yml", "../rules/cachewatch-alerts.yml"],
        "evaluation_interval": format_duration(STEP),
        "tests": tests,
    }
