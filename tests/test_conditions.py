"""The alert conditions compare against the thresholds in force: every per-cache rule reads
the recorded lookup of its own alert and severity, every lookup falls back to the generated
threshold, and the annotations ask for the same series."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cachewatch.analysis.definitions import alert_definitions
from cachewatch.bundle import conditions
from cachewatch.config import Config

ROOT = Path(__file__).resolve().parent.parent


def documents() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    rules = ROOT / "prometheus/rules"
    recording = yaml.safe_load((rules / "cachewatch-recording.yml").read_text())
    alerts = yaml.safe_load((rules / "cachewatch-alerts.yml").read_text())
    return recording["groups"][0]["rules"], alerts["groups"][0]["rules"]


def test_every_per_cache_rule_reads_its_own_threshold_and_escalation_switch() -> None:
    recording, alerts = documents()
    lookups = {
        (r["labels"]["alertname"], r["labels"].get("severity"))  # type: ignore[index]
        for r in recording
        if r["record"] in (conditions.THRESHOLD, conditions.ESCALATION)
    }
    checked = 0
    for d in alert_definitions(Config()):
        if not d.per_cache:
            continue
        for t in d.thresholds:
            assert (d.name, t.severity) in lookups
            plain = [r for r in alerts if r["alert"] == d.name and r["labels"] == {  # type: ignore[comparison-overlap]
                "severity": t.severity}]  # fmt: skip
            (rule,) = plain
            own = f'{conditions.THRESHOLD}{{alertname="{d.name}",severity="{t.severity}"}}'
            assert own in str(rule["expr"])
            assert own.replace("}", "") in str(rule["annotations"]["threshold"])  # type: ignore[index]
            checked += 1
        assert (d.name, None) in lookups  # its escalation switch
    assert checked == 11


def test_each_lookup_prefers_the_cache_then_the_service_default_then_the_generated_one() -> None:
    recording, _ = documents()
    (hit,) = [
        r for r in recording
        if r["record"] == conditions.THRESHOLD
        and r["labels"] == {"alertname": "CacheHitRatioLow", "severity": "warning"}
    ]  # fmt: skip
    own, default, generated = str(hit["expr"]).split("\n")
    selector = 'cachewatch_alert_threshold{alertname="CacheHitRatioLow",severity="warning"'
    assert own == f'max by (job, cache) ({selector},cache!=""}})'
    assert default.startswith("or on (job, cache) group by (job, cache) (cache:hit_ratio:rate5m)")
    assert default.endswith(f'on (job) group_left () max by (job) ({selector},cache=""}})')
    assert generated == "or on (job, cache) group by (job, cache) (cache:hit_ratio:rate5m) * 0.8"


def test_what_an_alert_reads_must_have_promql() -> None:
    with pytest.raises(ValueError, match="no PromQL"):
        conditions.signal("redis_up", Config().bundle)
    assert conditions.per_process("cache_size") and not conditions.per_process("cache_puts_total")
