"""The alerts in force: each cache's own thresholds from the file, changes at run time
(``configure_alert_threshold``), what a reload keeps, the series the rules read, and the
exporter's alert states, /alerts and gauges following at once."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import requests
from prometheus_client.metrics_core import Metric

import cachewatch
from cachewatch import Exporter
from cachewatch.analysis.alerts import AlertEvaluator
from cachewatch.analysis.signals import CacheSignals
from cachewatch.analysis.thresholds import (
    DEFAULT,
    FILE,
    RUNTIME,
    AlertRules,
    ThresholdCollector,
)
from cachewatch.config import ConfigError
from cachewatch.config.alerting import CustomAlert, ThresholdOverride
from cachewatch.web.server import HttpServer

from .analysis_helpers import FakeClock, analysis_config, cache, source

MB = 1024 * 1024
SETTINGS = analysis_config(
    alert_overrides=(
        ThresholdOverride("search", "hit_ratio_warning", 0.5),
        ThresholdOverride("search", "memory_warning_mb", 10.0),
        ThresholdOverride("search", "CacheTooBig", 10.0),
    ),
    custom_alerts=(CustomAlert("CacheTooBig", "cache_size", ">", 1000.0),),
)


def series(rules: AlertRules) -> dict[tuple[str, ...], float]:
    found = {}
    for family in ThresholdCollector(rules).collect():
        for sample in family.samples:
            labels = sample.labels
            key = (family.name, labels["alertname"], labels.get("severity", ""), labels["cache"])
            found[key] = sample.value
    return found


def test_one_collector_follows_run_time_changes_and_reuses_its_families_between() -> None:
    rules = AlertRules(SETTINGS)
    collector = ThresholdCollector(rules)
    key = ("cachewatch_alert_threshold", "CacheHitRatioLow", "warning", "")

    def seen() -> tuple[list[Metric], dict[tuple[str, ...], float]]:
        families = list(collector.collect())
        found = {
            (
                f.name,
                s.labels["alertname"],
                s.labels.get("severity", ""),
                s.labels["cache"],
            ): s.value
            for f in families
            for s in f.samples
        }
        return families, found

    before, values = seen()
    assert values[key] == 0.8
    again, _ = seen()
    assert all(new is old for new, old in zip(again, before, strict=True))
    rules.configure("CacheHitRatioLow", 0.9)
    after, values = seen()
    assert values[key] == 0.9 and after[0] is not before[0]


def test_a_cache_s_own_threshold_wins_over_the_default_then_run_time_changes_win() -> None:
    rules = AlertRules(SETTINGS)
    hit = rules.current.by_name["CacheHitRatioLow"]
    warning = hit.thresholds[0]

    def value(cache: str | None) -> tuple[float, str]:
        return rules.current.lookup(hit.name, warning, cache)

    assert value(None) == (0.8, DEFAULT)
    assert value("search") == (0.5, FILE)
    assert value("other") == (0.8, DEFAULT)
    rules.configure("CacheHitRatioLow", 0.9)  # every cache: the file's own still wins
    assert value(None) == value("other") == (0.9, RUNTIME)
    assert value("search") == (0.5, FILE)
    rules.configure("CacheHitRatioLow", 0.6, cache="search")
    assert value("search") == (0.6, RUNTIME)
    rules.configure("CacheHitRatioLow", None, cache="search")  # back to the file's
    assert value("search") == (0.5, FILE)
    memory = rules.current.by_name["CacheMemoryHigh"]
    assert rules.current.lookup(memory.name, memory.thresholds[0], "search") == (10 * MB, FILE)


def test_the_series_the_rules_read() -> None:
    rules = AlertRules(SETTINGS)
    rules.configure("CacheEvictionRateHigh", 0.5, cache="hot", escalation=False)
    found = series(rules)
    threshold, escalation = "cachewatch_alert_threshold", "cachewatch_alert_escalation_enabled"
    assert found[(threshold, "CacheHitRatioLow", "warning", "")] == 0.8
    assert found[(threshold, "CacheHitRatioLow", "critical", "")] == 0.5
    assert found[(threshold, "CacheHitRatioLow", "warning", "search")] == 0.5
    assert (threshold, "CacheHitRatioLow", "critical", "search") not in found
    assert found[(threshold, "CacheMemoryHigh", "warning", "search")] == 10 * MB
    assert found[(threshold, "CacheTooBig", "warning", "")] == 1000
    assert found[(threshold, "CacheTooBig", "warning", "search")] == 10
    assert found[(threshold, "CacheEvictionRateHigh", "warning", "hot")] == 0.5
    assert found[(escalation, "CacheEvictionRateHigh", "", "")] == 1
    assert found[(escalation, "CacheEvictionRateHigh", "", "hot")] == 0
    assert found[(threshold, "CacheSourceDown", "critical", "")] == 1
    assert (escalation, "CacheSourceDown", "", "") not in found  # nothing to escalate


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("CacheHitRatioLo", 0.5), {}, "unknown alert 'CacheHitRatioLo'"),
        (("CacheHitRatioLow", 1.5), {}, "CacheHitRatioLow warning: invalid ratio '1.5'"),
        (("CacheHitRatioLow", float("nan")), {}, "must be a finite number"),
        (("CacheHitRatioLow", 0.9), {"severity": "critical"}, "must not be above"),
        (("CacheHitRatioLow", 0.6), {"cache": "search", "severity": "critical"}, "cache search"),
        (("CacheMemoryNearLimit", 0.5), {"severity": "critical"}, "has no 'critical' threshold"),
        (("CacheSourceDown", 0.5), {}, "CacheSourceDown has no threshold to configure"),
        (("CacheLatencyHigh", -1.0), {}, "must be a finite, non-negative time"),
        (("CacheHitRatioLow", 0.5), {"cache": " "}, "cache must be a cache name"),
    ],
)
def test_a_bad_change_is_refused_and_changes_nothing(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    rules = AlertRules(SETTINGS)
    before = rules.current
    with pytest.raises(ValueError, match=message):
        rules.configure(*args, **kwargs)
    assert rules.current is before


def test_a_reload_keeps_run_time_changes_of_alerts_that_remain() -> None:
    rules = AlertRules(SETTINGS)
    rules.configure("CacheTooBig", 5.0, cache="other")
    rules.configure("CacheHitRatioLow", 0.9, escalation=False)
    reloaded = dataclasses.replace(
        SETTINGS, hit_ratio_warning=0.7, custom_alerts=(), alert_overrides=()
    )
    state = rules.apply(reloaded)
    assert "CacheTooBig" not in state.by_name
    assert not any(key[0] == "CacheTooBig" for key in state.runtime)
    hit = state.by_name["CacheHitRatioLow"]
    assert state.lookup(hit.name, hit.thresholds[0], "search") == (0.9, RUNTIME)
    assert not state.escalates(hit, "search")
    with pytest.raises(ConfigError, match=r"critical must not be above .* set at run time"):
        rules.apply(dataclasses.replace(SETTINGS, hit_ratio_warning=0.99, hit_ratio_critical=0.95))
    assert rules.current is state


def signals(name: str, **values: Any) -> CacheSignals:
    values.setdefault("request_rate", 50.0)
    snapshot = values.pop("snapshot", cache(name))
    return CacheSignals(cache=name, source="local", timestamp=0.0, snapshot=snapshot, **values)


def test_the_evaluation_reads_each_cache_s_thresholds_and_the_custom_alerts() -> None:
    ev = AlertEvaluator(AlertRules(SETTINGS))
    caches = [
        signals("search", hit_ratio=0.6, snapshot=cache("search", size=20)),
        signals("other", hit_ratio=0.6, snapshot=cache("other", size=20)),
    ]
    made = ev.evaluate(0, caches, {})
    assert sorted((t.alertname, t.cache, t.severity) for t in made) == [
        ("CacheHitRatioLow", "other", "warning"),  # 0.6 < 0.8 here, not below search's 0.5
        ("CacheTooBig", "search", "warning"),  # 20 entries > search's own 10
    ]


def test_a_custom_alert_on_a_counter_reads_its_rate() -> None:
    settings = analysis_config(
        custom_alerts=(CustomAlert("CacheEvictingFast", "cache_evictions_total", ">=", 2.0),)
    )
    clock = FakeClock()
    exporter = Exporter([])
    analysis = exporter.attach_analysis(settings, clock=clock, start=False)
    try:
        for i in range(8):  # 20 evictions per 10 s sample: 2 per second
            clock.advance(10)
            analysis.sampler.feed([source(cache("c", evictions=20 * i, puts=100 * i))])
        (state,) = [s for s in analysis.evaluator.states() if s.alertname == "CacheEvictingFast"]
        assert state.state == "firing" and state.value == pytest.approx(2.0)
    finally:
        exporter.close()


def test_configure_alert_threshold_is_followed_at_once(
    exporter: Exporter, http: HttpServer
) -> None:
    clock = FakeClock()
    analysis = exporter.attach_analysis(analysis_config(alert_for_seconds=0.0), clock=clock,
                                        start=False)  # fmt: skip
    for i in range(8):  # a hit ratio of 90%, above the warning threshold of 80%
        clock.advance(10)
        analysis.sampler.feed([source(cache("hot", hits=90 * i, misses=10 * i), at=clock.now)])
    base = f"http://127.0.0.1:{http.port}"

    def alerts() -> list[dict[str, Any]]:
        body = requests.get(f"{base}/alerts", timeout=5).json()
        return [a for a in body["alerts"] if a["alertname"] == "CacheHitRatioLow"]

    assert alerts() == []
    cachewatch.configure_alert_threshold("CacheHitRatioLow", 0.95, cache="hot", exporter=exporter)
    (alert,) = alerts()
    assert (alert["state"], alert["severity"], alert["threshold"]) == ("firing", "warning", 0.95)
    metrics = requests.get(f"{base}/metrics", timeout=5).text
    assert (
        'cachewatch_alert_threshold{alertname="CacheHitRatioLow",cache="hot",severity="warning"}'
        " 0.95" in metrics
    )
    assert (
        'cachewatch_alert_active{alertname="CacheHitRatioLow",cache="hot",severity="warning"} 1.0'
        in metrics
    )
    body = requests.get(f"{base}/alerts", timeout=5).json()
    (hit,) = [d for d in body["definitions"] if d["alertname"] == "CacheHitRatioLow"]
    assert hit["cache_thresholds"] == [
        {"cache": "hot", "severity": "warning", "value": 0.95, "origin": RUNTIME}
    ]
    cachewatch.configure_alert_threshold("CacheHitRatioLow", None, cache="hot", exporter=exporter)
    assert alerts()[0]["state"] == "resolved"
    with pytest.raises(ValueError, match="unknown alert"):
        cachewatch.configure_alert_threshold("Nope", 1.0, exporter=exporter)
