"""Alert states: every alert's pending, firing, escalated and resolved path, the cooldown,
the idle-cache guard, threshold overrides, the gauges and /alerts."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from cachewatch import Exporter
from cachewatch.analysis.alerts import AlertEvaluator, Transition
from cachewatch.analysis.definitions import alert_definitions
from cachewatch.analysis.signals import CacheSignals
from cachewatch.analysis.thresholds import AlertRules, ThresholdCollector
from cachewatch.config import AlertSettings, load_config
from cachewatch.web.server import HttpServer

from .analysis_helpers import FakeClock, analysis_config, cache, source

MB = 1024 * 1024
CONFIG = analysis_config()  # for 30 s, escalation after 120 s, cooldown 100 s


def signals(name: str = "c", memory: float = 10 * MB, **values: Any) -> CacheSignals:
    values.setdefault("request_rate", 50.0)
    values.setdefault("hit_ratio", 0.95)
    return CacheSignals(
        cache=name,
        source="local",
        timestamp=0.0,
        snapshot=cache(name, memory_bytes=memory),
        **values,
    )


# alertname -> (warning-level signals, critical-level signals or None, healthy signals)
Maker = Callable[[], CacheSignals]
CASES: dict[str, tuple[Maker, Maker | None, Maker]] = {
    "CacheHitRatioLow": (
        lambda: signals(hit_ratio=0.7),
        lambda: signals(hit_ratio=0.3),
        lambda: signals(hit_ratio=0.95),
    ),
    "CacheMemoryHigh": (
        lambda: signals(memory=600 * MB),
        lambda: signals(memory=1200 * MB),
        lambda: signals(memory=100 * MB),
    ),
    "CacheMemoryNearLimit": (
        lambda: signals(memory_limit_ratio=0.95),
        None,
        lambda: signals(memory_limit_ratio=0.5),
    ),
    "CacheMemoryFullSoon": (
        lambda: signals(memory_full_seconds=3600.0),
        None,
        lambda: signals(memory_full_seconds=None),
    ),
    "CacheErrorRateHigh": (
        lambda: signals(error_ratio=0.1),
        lambda: signals(error_ratio=0.3),
        lambda: signals(error_ratio=0.0),
    ),
    "CacheEvictionRateHigh": (
        lambda: signals(eviction_ratio=0.5),
        None,
        lambda: signals(eviction_ratio=0.05),
    ),
    "CacheLatencyHigh": (
        lambda: signals(latency_p99_seconds=0.5),
        None,
        lambda: signals(latency_p99_seconds=0.002),
    ),
    "CacheCleanupStalled": (
        lambda: signals(cleanup_overdue_factor=5.0),
        None,
        lambda: signals(cleanup_overdue_factor=1.0),
    ),
}


def evaluator(config: AlertSettings = CONFIG) -> AlertEvaluator:
    return AlertEvaluator(AlertRules(config))


def step(ev: AlertEvaluator, t: float, made: CacheSignals, alertname: str) -> list[str]:
    return [
        f"{x.state}:{x.severity}"
        for x in ev.evaluate(t, [made], {"local": True})
        if x.alertname == alertname
    ]


def active(ev: AlertEvaluator, alertname: str, cache_name: str = "c") -> dict[str, float]:
    found = {}
    for family in ev.collect():
        if family.name == "cachewatch_alert_active":
            for sample in family.samples:
                if (sample.labels["alertname"], sample.labels["cache"]) == (alertname, cache_name):
                    found[sample.labels["severity"]] = sample.value
    return found


def transitions_total(ev: AlertEvaluator) -> dict[tuple[str, str, str], float]:
    for family in ev.collect():
        if family.name == "cachewatch_alert_transitions":
            return {
                (s.labels["alertname"], s.labels["severity"], s.labels["state"]): s.value
                for s in family.samples
            }
    return {}


@pytest.mark.parametrize("alertname", sorted(CASES))
def test_pending_firing_escalated_resolved(alertname: str) -> None:
    warn, _, good = CASES[alertname]
    ev = evaluator()
    assert step(ev, 0, good(), alertname) == []
    assert step(ev, 10, warn(), alertname) == ["pending:warning"]
    assert step(ev, 30, warn(), alertname) == []  # held 20 s of the 30 s 'for'
    assert active(ev, alertname) == {"warning": 0, "critical": 0}
    assert step(ev, 40, warn(), alertname) == ["firing:warning"]
    assert active(ev, alertname) == {"warning": 1, "critical": 0}
    assert step(ev, 150, warn(), alertname) == []  # firing 110 s of the 120 s
    assert step(ev, 160, warn(), alertname) == ["escalated:critical"]
    assert active(ev, alertname) == {"warning": 0, "critical": 1}
    (state,) = [s for s in ev.states() if s.alertname == alertname]
    assert state.escalated and state.state == "firing"
    # The warning's threshold holds: never "(critical)" beside it.
    assert state.summary.endswith(" (warning for 2m, escalated to critical)"), state.summary
    assert "(critical)" not in state.summary
    step(ev, 165, warn(), alertname)
    (later,) = [s for s in ev.states() if s.alertname == alertname]
    assert later.summary.endswith(" (warning for 2m, escalated to critical)")
    assert step(ev, 170, good(), alertname) == ["resolved:critical"]
    assert active(ev, alertname) == {"warning": 0, "critical": 0}
    counts = transitions_total(ev)
    for key in ("pending", "warning"), ("firing", "warning"), ("escalated", "critical"):
        assert counts[(alertname, key[1], key[0])] == 1
    assert counts[(alertname, "critical", "resolved")] == 1


@pytest.mark.parametrize("alertname", sorted(k for k, v in CASES.items() if v[1] is not None))
def test_critical_threshold_fires_critical_and_steps_back_to_warning(alertname: str) -> None:
    warn, crit, good = CASES[alertname]
    assert crit is not None
    ev = evaluator()
    assert step(ev, 0, crit(), alertname) == ["pending:critical"]
    assert step(ev, 30, crit(), alertname) == ["firing:critical"]
    assert active(ev, alertname)["critical"] == 1
    assert step(ev, 40, warn(), alertname) == ["firing:warning"]
    assert step(ev, 50, good(), alertname) == ["resolved:warning"]


def test_pending_that_clears_goes_back_to_inactive_without_firing() -> None:
    warn, _, good = CASES["CacheEvictionRateHigh"]
    ev = evaluator()
    assert step(ev, 0, warn(), "CacheEvictionRateHigh") == ["pending:warning"]
    assert step(ev, 20, good(), "CacheEvictionRateHigh") == ["inactive:warning"]
    assert step(ev, 40, warn(), "CacheEvictionRateHigh") == ["pending:warning"]
    assert step(ev, 60, warn(), "CacheEvictionRateHigh") == []  # 'for' restarted at 40
    assert step(ev, 70, warn(), "CacheEvictionRateHigh") == ["firing:warning"]


def test_source_down_fires_critical_and_resolves() -> None:
    ev = evaluator()

    def run(t: float, up: bool) -> list[str]:
        made = ev.evaluate(t, [], {"redis": up})
        return [f"{x.state}:{x.severity}:{x.cache}" for x in made]

    assert run(0, True) == []
    assert run(5, False) == ["pending:critical:redis"]
    assert run(35, False) == ["firing:critical:redis"]
    assert active(ev, "CacheSourceDown", "redis") == {"critical": 1}
    assert run(1000, False) == []  # critical already: nothing to escalate
    assert run(1010, True) == ["resolved:critical:redis"]


def test_idle_cache_never_alerts_on_hit_ratio() -> None:
    ev = evaluator()
    for t in range(0, 600, 10):
        idle = signals(hit_ratio=0.05, request_rate=0.5)  # below 1 lookup/s
        assert step(ev, t, idle, "CacheHitRatioLow") == []
        unknown = signals(hit_ratio=0.05, request_rate=None)
        assert step(ev, t + 5, unknown, "CacheHitRatioLow") == []
    assert step(ev, 700, signals(hit_ratio=0.05, request_rate=2.0), "CacheHitRatioLow") == [
        "pending:critical"
    ]


def test_a_cache_that_disappears_resolves_its_alerts() -> None:
    ev = evaluator()
    warn = CASES["CacheLatencyHigh"][0]
    step(ev, 0, warn(), "CacheLatencyHigh")
    assert step(ev, 30, warn(), "CacheLatencyHigh") == ["firing:warning"]
    made = ev.evaluate(40, [], {"local": True})
    assert [(x.alertname, x.state) for x in made] == [("CacheLatencyHigh", "resolved")]


def test_cooldown_holds_back_flapping_notifications(caplog: pytest.LogCaptureFixture) -> None:
    ev = evaluator(analysis_config(alert_for_seconds=0.0))
    warn, _, good = CASES["CacheEvictionRateHigh"]
    made: list[Transition] = []
    with caplog.at_level(logging.INFO, logger="cachewatch.alerts"):
        for i in range(10):  # flaps every 10 s, well inside the 100 s cooldown
            made += ev.evaluate(10 * i, [warn() if i % 2 == 0 else good()], {})
        logged = [r.getMessage() for r in caplog.records]
        assert len(made) == 10  # every transition is counted ...
        assert len(logged) == 1 and "firing" in logged[0]  # ... but only one is logged
        made += ev.evaluate(120, [warn()], {})  # past the cooldown: logged, with the tally
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 2
    assert "suppressed_since_last=9" in logged[1]
    assert transitions_total(ev)[("CacheEvictionRateHigh", "warning", "firing")] == 6
    assert ev.notifications == 2


def test_cooldown_never_holds_back_a_rise_to_critical(caplog: pytest.LogCaptureFixture) -> None:
    ev = evaluator(analysis_config(alert_for_seconds=0.0))
    warn, crit, _ = CASES["CacheErrorRateHigh"]
    assert crit is not None
    with caplog.at_level(logging.INFO, logger="cachewatch.alerts"):
        ev.evaluate(0, [warn()], {})
        ev.evaluate(10, [crit()], {})
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and "severity=critical" in messages[1]


def test_thresholds_from_environment_and_yaml(tmp_path: Path) -> None:
    yaml_file = tmp_path / "cachewatch.yml"
    yaml_file.write_text(
        "alerts:\n  memory_warning_mb: 100\n  memory_critical_mb: 200\n"
        "  hit_ratio_warning: 0.9\n  for: 1m\n"
    )
    environ = {
        "CACHEWATCH_CONFIG_FILE": str(yaml_file),
        "CACHE_MEMORY_CRITICAL_THRESHOLD_MB": "300",  # the environment wins over the file
        "CACHE_ERROR_RATE_WARNING_THRESHOLD": "0.02",
        "CACHE_LATENCY_P99_WARNING_THRESHOLD": "250ms",
    }
    config = load_config("serve", {}, environ)
    ev = evaluator(config.alerts)
    thresholds = {}
    for family in ThresholdCollector(ev.rules).collect():
        if family.name == "cachewatch_alert_threshold":
            thresholds = {
                (s.labels["alertname"], s.labels["severity"]): s.value for s in family.samples
            }
    assert thresholds[("CacheMemoryHigh", "warning")] == 100 * MB
    assert thresholds[("CacheMemoryHigh", "critical")] == 300 * MB
    assert thresholds[("CacheHitRatioLow", "warning")] == 0.9
    assert thresholds[("CacheHitRatioLow", "critical")] == 0.5
    assert thresholds[("CacheErrorRateHigh", "warning")] == 0.02
    assert thresholds[("CacheLatencyHigh", "warning")] == 0.25
    # the overridden thresholds and 'for' drive the evaluation too
    at_150mb = signals(memory=150 * MB)
    assert step(ev, 0, at_150mb, "CacheMemoryHigh") == ["pending:warning"]
    assert step(ev, 59, at_150mb, "CacheMemoryHigh") == []
    assert step(ev, 60, at_150mb, "CacheMemoryHigh") == ["firing:warning"]


def test_alerts_route_and_gauges_over_http(exporter: Exporter, http: HttpServer) -> None:
    clock = FakeClock()
    analysis = exporter.attach_analysis(CONFIG, clock=clock, start=False)
    for i in range(12):
        clock.advance(10)
        busy_and_missing = cache("hot", hits=10 * i, misses=90 * i)
        analysis.sampler.feed([source(busy_and_missing, at=clock.now)])
    body = requests.get(f"http://127.0.0.1:{http.port}/alerts?limit=3", timeout=5).json()
    (alert,) = [a for a in body["alerts"] if a["alertname"] == "CacheHitRatioLow"]
    assert alert["state"] == "firing" and alert["severity"] == "critical"
    assert alert["cache"] == "hot" and alert["value"] == pytest.approx(0.1)
    assert body["firing"] == 1
    assert [t["state"] for t in body["transitions"]] == ["firing", "pending"]
    assert {d["alertname"] for d in body["definitions"]} >= set(CASES) | {"CacheSourceDown"}
    metrics = requests.get(f"http://127.0.0.1:{http.port}/metrics", timeout=5).text
    assert (
        'cachewatch_alert_active{alertname="CacheHitRatioLow",cache="hot",severity="critical"} 1.0'
        in metrics
    )
    assert (
        'cachewatch_alert_transitions_total{alertname="CacheHitRatioLow",severity="critical",'
        'state="firing"} 1.0' in metrics
    )
    bad = requests.get(f"http://127.0.0.1:{http.port}/alerts?limit=x", timeout=5)
    assert bad.status_code == 400


def test_every_definition_has_a_signal_the_exporter_evaluates() -> None:
    from cachewatch.analysis.definitions import SIGNALS

    probe = signals(
        hit_ratio=0.5, memory_limit_ratio=0.5, memory_full_seconds=1.0, error_ratio=0.5,
        eviction_ratio=0.5, latency_p99_seconds=0.5, cleanup_overdue_factor=0.5,
    )  # fmt: skip
    for definition in alert_definitions(CONFIG):
        assert definition.signal in SIGNALS
        if definition.per_cache:
            assert probe.signal(definition.signal) is not None, definition.signal
