"""The alert sections of the configuration file: per-cache overrides and custom alerts, read
from YAML, and every mistake one line naming the file and the path, exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from cachewatch.cli import main
from cachewatch.config import ConfigError, load_config
from cachewatch.config.alerting import CustomAlert, ThresholdOverride, holds

GOOD = """\
alerts:
  hit_ratio_warning: 0.7
  overrides:
    search_cache:
      hit_ratio_warning: 0.5
      memory_warning_mb: 50
      latency_p99_warning: 20ms
      CacheTooManyEntries: 100
    session_cache: {error_ratio_critical: 0.5}
  custom:
    - alert: CacheTooManyEntries
      metric: cache_size
      op: ">="
      threshold: 50000
      for: 10m
      runbook: Raise maxsize or shorten the TTL.
    - alert: CacheNoTraffic
      signal: request_rate
      op: "=="
      threshold: 0
      severity: critical
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "cachewatch.yml"
    path.write_text(text)
    return str(path)


def test_overrides_and_custom_alerts_are_read(tmp_path: Path) -> None:
    config = load_config("serve", {"config_file": write(tmp_path, GOOD)}, environ={})
    assert config.hit_ratio_warning == 0.7
    assert config.alert_overrides == (
        ThresholdOverride("search_cache", "hit_ratio_warning", 0.5),
        ThresholdOverride("search_cache", "memory_warning_mb", 50.0),
        ThresholdOverride("search_cache", "latency_p99_warning_seconds", 0.02),
        ThresholdOverride("search_cache", "CacheTooManyEntries", 100.0),
        ThresholdOverride("session_cache", "error_ratio_critical", 0.5),
    )
    entries, idle = config.custom_alerts
    assert entries == CustomAlert(
        "CacheTooManyEntries", "cache_size", ">=", 50000.0, "warning", 600.0, True,
        runbook="Raise maxsize or shorten the TTL.",
    )  # fmt: skip
    assert entries.reads_metric and not idle.reads_metric
    assert (idle.severity, idle.escalation, idle.for_seconds) == ("critical", False, None)
    assert config.alerts.custom_alerts == config.custom_alerts  # handed on in the groups
    assert config.bundle.alert_overrides == config.alert_overrides


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            "custom: [{alert: A, metric: cache_sise, op: '>', threshold: 1}]",
            "alerts.custom[0] (A).metric: unknown metric 'cache_sise'; did you mean "
            "'cache_size'? (see docs/configuration.md)",
        ),
        (
            "custom: [{alert: A, metric: redis_up, op: '>', threshold: 1}]",
            "alerts.custom[0] (A).metric: 'redis_up' is not a per-cache counter or gauge",
        ),
        (
            "custom: [{alert: A, signal: hitratio, op: '<', threshold: 1}]",
            "alerts.custom[0] (A).signal: unknown signal 'hitratio'; did you mean 'hit_ratio'?",
        ),
        (
            "custom: [{alert: A, metric: cache_size, op: '=>', threshold: 1}]",
            "alerts.custom[0] (A).op: invalid operator '=>' (one of: > >= < <= == !=)",
        ),
        (
            "custom: [{alert: A, metric: cache_size, op: '>'}]",
            "alerts.custom[0] (A).threshold: required",
        ),
        (
            "custom: [{alert: A, metric: cache_size, op: '>', threshold: lots}]",
            "alerts.custom[0] (A).threshold: invalid number 'lots'",
        ),
        (
            "custom: [{alert: A, metric: cache_size, signal: hit_ratio, op: '>', threshold: 1}]",
            "alerts.custom[0] (A): give either metric",
        ),
        (
            "custom: [{alert: A, metric: cache_size, op: '>', threshold: 1, severity: page}]",
            "alerts.custom[0] (A).severity: invalid severity 'page'",
        ),
        (
            "custom: [{alert: A, metric: cache_size, op: '>', threshold: 1, severity: critical,"
            " escalation: true}]",
            "alerts.custom[0] (A).escalation: only a warning escalates",
        ),
        (
            "custom: [{alert: A, metric: cache_size, op: '>', threshold: 1, for: soon}]",
            "alerts.custom[0] (A).for: invalid duration 'soon'",
        ),
        ("custom: [{alert: 'A B', metric: cache_size}]", "alerts.custom[0].alert: invalid"),
        ("custom: [{metric: cache_size}]", "alerts.custom[0].alert: every custom alert needs"),
        (
            "custom: [{alert: A, metrc: cache_size}]",
            "alerts.custom[0]: unknown key 'metrc'; did you mean 'metric'?",
        ),
        (
            "custom:\n    - {alert: A, metric: cache_size, op: '>', threshold: 1}\n"
            "    - {alert: A, metric: cache_size, op: '<', threshold: 1}",
            "alerts.custom[1].alert: 'A' is defined twice",
        ),
        ("custom: {alert: A}", "alerts.custom: must be a list of alerts"),
        (
            "overrides: {c1: {hit_ratio_warnin: 0.5}}",
            "alerts.overrides.c1: unknown threshold 'hit_ratio_warnin'; did you mean "
            "'hit_ratio_warning'?",
        ),
        (
            "overrides: {c1: {hit_ratio_warning: 1.5}}",
            "alerts.overrides.c1.hit_ratio_warning: invalid ratio '1.5'",
        ),
        (
            "overrides: {c1: {hit_ratio_critical: 0.9}}",
            "alerts.overrides.c1: alerts.hit-ratio-critical must not be above "
            "alerts.hit-ratio-warning (0.9 > 0.8)",
        ),
        ("overrides: {c1: 0.5}", "alerts.overrides.c1: must be a mapping"),
        ("overrides: [c1]", "alerts.overrides: must be a mapping"),
    ],
)
def test_a_bad_definition_is_one_line_naming_it_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], section: str, message: str
) -> None:
    path = write(tmp_path, "alerts:\n  " + section + "\n")
    for argv in (["check-config", path], ["generate", "--check", "--config.file", path]):
        assert main(argv) == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith(f"cachewatch: error: {path}: ")
        assert message in line, line


def test_a_custom_alert_named_like_a_built_in_one_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        "alerts:\n  custom: [{alert: CacheHitRatioLow, signal: hit_ratio, op: '<', "
        "threshold: 0.1}]\n",
    )
    assert main(["check-config", path]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "alerts.custom[0] (CacheHitRatioLow).alert: 'CacheHitRatioLow' is a built-in" in line


def test_the_environment_still_wins_over_the_file_for_the_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    config = load_config(
        "serve", {"config_file": path}, environ={"CACHE_HIT_RATIO_WARNING_THRESHOLD": "0.9"}
    )
    assert config.hit_ratio_warning == 0.9
    assert ThresholdOverride("search_cache", "hit_ratio_warning", 0.5) in config.alert_overrides
    # A cache's own thresholds are checked against the defaults in force.
    with pytest.raises(ConfigError, match=r"overrides.session_cache: alerts.error-ratio-crit"):
        environ = {
            "CACHE_ERROR_RATE_WARNING_THRESHOLD": "0.6",
            "CACHE_ERROR_RATE_CRITICAL_THRESHOLD": "0.7",
        }
        load_config("serve", {"config_file": path}, environ=environ)


@pytest.mark.parametrize(
    ("value", "operator", "threshold", "expected"),
    [(2, ">", 1, True), (1, ">", 1, False), (1, ">=", 1, True), (0, "<", 1, True),
     (1, "<=", 1, True), (1, "==", 1, True), (1, "!=", 1, False), (2, "!=", 1, True)],
)  # fmt: skip
def test_operators_compare_as_promql_does(
    value: float, operator: str, threshold: float, expected: bool
) -> None:
    assert holds(value, operator, threshold) is expected
