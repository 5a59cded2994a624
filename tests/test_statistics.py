"""Alert statistics since start, per alert and cache: times fired, time spent firing, mean
time to resolve, last fired and resolved; in /alerts and as metrics."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from cachewatch import Exporter
from cachewatch.analysis.alerts import AlertEvaluator
from cachewatch.analysis.signals import CacheSignals
from cachewatch.analysis.statistics import AlertStatistics, StatisticsCollector
from cachewatch.analysis.thresholds import AlertRules
from cachewatch.web.server import HttpServer

from .analysis_helpers import FakeClock, analysis_config, cache, source

CONFIG = analysis_config(alert_for_seconds=0.0)


def signals(evictions_per_put: float) -> CacheSignals:
    return CacheSignals("c", "local", 0.0, cache("c"), eviction_ratio=evictions_per_put)


def walk(ev: AlertEvaluator, steps: list[tuple[float, float]]) -> None:
    for t, ratio in steps:
        ev.evaluate(t, [signals(ratio)], {})


def metrics(statistics: AlertStatistics) -> dict[str, float]:
    found = {}
    for family in StatisticsCollector(statistics).collect():
        for sample in family.samples:
            if sample.labels == {"alertname": "CacheEvictionRateHigh", "cache": "c"}:
                found[sample.name] = sample.value
    return found


def test_fired_time_firing_and_time_to_resolve() -> None:
    ev = AlertEvaluator(AlertRules(CONFIG))
    # Fires at 10, resolves at 70 (60 s); fires at 100, resolves at 200 (100 s); fires at 300.
    walk(ev, [(0, 0.0), (10, 0.9), (40, 0.9), (70, 0.0), (100, 0.9), (200, 0.0), (300, 0.9)])
    walk(ev, [(330, 0.9)])
    (record,) = ev.statistics.records()
    assert record == {
        "alertname": "CacheEvictionRateHigh",
        "cache": "c",
        "fired": 3,
        "resolved": 2,
        "firing_now": True,
        "firing_seconds": 60 + 100 + 30,
        "mean_time_to_resolve_seconds": 80.0,
        "last_fired": 300,
        "last_resolved": 200,
    }
    assert metrics(ev.statistics) == {
        "cachewatch_alert_fired_total": 3,
        "cachewatch_alert_firing_seconds_total": 190,
        "cachewatch_alert_time_to_resolve_seconds_count": 2,
        "cachewatch_alert_time_to_resolve_seconds_sum": 160,
        "cachewatch_alert_last_fired_timestamp_seconds": 300,
        "cachewatch_alert_last_resolved_timestamp_seconds": 200,
    }


def test_severity_changes_and_escalation_are_one_firing() -> None:
    ev = AlertEvaluator(AlertRules(CONFIG))
    errors = [(t, 0.1) for t in range(0, 200, 10)] + [(200, 0.3), (210, 0.1), (220, 0.0)]
    for t, ratio in errors:  # warning, escalated after 120 s, critical, warning, resolved
        ev.evaluate(t, [CacheSignals("c", "local", 0.0, cache("c"), error_ratio=ratio)], {})
    (record,) = ev.statistics.records()
    assert (record["fired"], record["resolved"], record["firing_seconds"]) == (1, 1, 220)


def test_statistics_survive_the_forgetting_of_resolved_states() -> None:
    ev = AlertEvaluator(AlertRules(CONFIG))
    walk(ev, [(0, 0.9), (10, 0.0), (10_000, 0.0)])  # the state is long forgotten
    assert ev.states() == []
    (record,) = ev.statistics.records()
    assert (record["fired"], record["mean_time_to_resolve_seconds"]) == (1, 10.0)


def test_statistics_in_alerts_report_and_metrics(exporter: Exporter, http: HttpServer) -> None:
    clock = FakeClock()
    analysis = exporter.attach_analysis(CONFIG, clock=clock, start=False)
    hits = misses = 0
    for i in range(16):  # misses for 40 s, then hits again
        clock.advance(10)
        hits, misses = (hits + 10, misses + 90) if i < 4 else (hits + 200, misses + 1)
        analysis.sampler.feed([source(cache("hot", hits=hits, misses=misses), at=clock.now)])
    base = f"http://127.0.0.1:{http.port}"
    body: dict[str, Any] = requests.get(f"{base}/alerts", timeout=5).json()
    (record,) = [r for r in body["statistics"] if r["alertname"] == "CacheHitRatioLow"]
    assert record["cache"] == "hot" and record["fired"] == 1 and record["resolved"] == 1
    assert record["mean_time_to_resolve_seconds"] == pytest.approx(record["firing_seconds"])
    report = requests.get(f"{base}/report", timeout=5).json()
    (hot,) = report["caches"]
    assert [r["alertname"] for r in hot["alert_statistics"]] == ["CacheHitRatioLow"]
    text = requests.get(f"{base}/metrics", timeout=5).text
    assert 'cachewatch_alert_fired_total{alertname="CacheHitRatioLow",cache="hot"} 1.0' in text
    assert 'cachewatch_alert_time_to_resolve_seconds_count{alertname="CacheHitRatioLow"' in text
