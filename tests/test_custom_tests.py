"""Custom alerts of the configuration file in the bundle: their rules, promtool scenarios that
pass (and fail when the rule is wrong), the runbook page their annotations link to, and the
thresholds they read at run time."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cachewatch.cli import main

from .servers import require_binary

CONFIG = """\
alerts:
  overrides:
    search_cache: {CacheTooManyEntries: 100}
  custom:
    - {alert: CacheTooManyEntries, metric: cache_size, op: ">", threshold: 50000,
       runbook: "Raise maxsize, or shorten the TTL."}
    - {alert: CacheAtItsLimit, metric: cachewatch_cache_max_entries, op: "==", threshold: 100,
       severity: critical}
    - {alert: CacheBusy, metric: cache_gets_total, op: ">=", threshold: 500, for: 2m,
       escalation: false}
    - {alert: CacheRarelyHit, signal: hit_ratio, op: "<=", threshold: 0.3}
    - {alert: CacheFillingUp, signal: memory_full_seconds, op: "<", threshold: 600}
    - {alert: CacheHalfFull, signal: memory_limit_ratio, op: "!=", threshold: 0.5}
"""
CUSTOM = ("CacheTooManyEntries", "CacheAtItsLimit", "CacheBusy", "CacheRarelyHit",
          "CacheFillingUp", "CacheHalfFull")  # fmt: skip


def promtool(tests: Path, *alerts: str) -> subprocess.CompletedProcess[str]:
    """promtool on the scenarios of ``alerts`` (the built-in ones have tests of their own)."""
    document = yaml.safe_load((tests / "cachewatch-alerts.test.yml").read_text())
    document["tests"] = [t for t in document["tests"] if t["name"].split(":")[0] in alerts]
    (tests / "custom.test.yml").write_text(yaml.safe_dump(document))
    result = subprocess.run(
        [require_binary("promtool"), "test", "rules", "custom.test.yml"],
        cwd=tests, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout + result.stderr
    )


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("custom")
    config = root / "cachewatch.yml"
    config.write_text(CONFIG)
    assert main(["generate", "--config.file", str(config), "--output", str(root / "out")]) == 0
    assert main(["generate", "--check", "--config.file", str(config), "--output",
                 str(root / "out")]) == 0  # fmt: skip
    yield root / "out"


def rules(bundle: Path, group: str) -> list[dict[str, Any]]:
    document = yaml.safe_load((bundle / "prometheus/rules/cachewatch-alerts.yml").read_text())
    (found,) = [g["rules"] for g in document["groups"] if g["name"] == group]
    return found  # type: ignore[no-any-return]


def test_custom_alerts_are_rules_of_their_own_group(bundle: Path) -> None:
    custom = rules(bundle, "cachewatch.custom")
    assert {r["alert"] for r in custom} == set(CUSTOM)
    assert not {r["alert"] for r in rules(bundle, "cachewatch.alerts")} & set(CUSTOM)
    (big,) = [r for r in custom if r["alert"] == "CacheTooManyEntries" and "escalated" not in
              r["labels"]]  # fmt: skip
    assert big["expr"].startswith("max by (job, instance, cache) (cache_size)\n  > on (job, cache)")
    (limit,) = [r for r in custom if r["alert"] == "CacheAtItsLimit"]  # critical: no escalation
    assert " == on (job, cache) group_left () cache:alert_threshold" in limit["expr"]
    busy = [r for r in custom if r["alert"] == "CacheBusy"]
    assert [r["for"] for r in busy] == ["2m", "32m"]  # escalation off, but switchable at run time
    assert "sum by (job, cache) (rate(cache_gets_total[5m]))" in busy[0]["expr"]
    assert all(r["annotations"]["runbook_url"].endswith(
        f"/docs/runbook-custom.md#{r['alert'].lower()}") for r in custom)  # fmt: skip


def test_their_promtool_scenarios_pass_and_cover_firing_and_quiet(bundle: Path) -> None:
    result = promtool(bundle / "prometheus/tests", *CUSTOM)
    assert result.returncode == 0, result.stdout
    document = yaml.safe_load((bundle / "prometheus/tests/cachewatch-alerts.test.yml").read_text())
    checks = [c for t in document["tests"] for c in t["alert_rule_test"]]
    for name in CUSTOM:
        mine = [c for c in checks if c["alertname"] == name]
        assert any(c["exp_alerts"] for c in mine), f"{name} never fires"
        assert any(not c["exp_alerts"] for c in mine), f"{name} never stays quiet"
    names = {t["name"] for t in document["tests"]}
    assert "CacheAtItsLimit: fires at 100 (cachewatch_cache_max_entries == 100)" in names
    assert "CacheHalfFull: quiet at 0.5 (not memory_limit_ratio != 0.5)" in names
    escalated = [a for c in checks if c["alertname"] == "CacheTooManyEntries"
                 for a in c["exp_alerts"] if a["exp_labels"].get("escalated")]  # fmt: skip
    assert escalated  # a warning escalates by default, as the built-in ones do


def test_a_wrong_operator_in_the_rule_fails_its_scenarios(bundle: Path, tmp_path: Path) -> None:
    broken = tmp_path / "prometheus"
    shutil.copytree(bundle / "prometheus", broken)
    alerts = broken / "rules/cachewatch-alerts.yml"
    document = yaml.safe_load(alerts.read_text())
    for rule in document["groups"][1]["rules"]:
        if rule["alert"] == "CacheTooManyEntries":
            assert "(cache_size)\n" in rule["expr"] and " > on (" in rule["expr"]
            rule["expr"] = rule["expr"].replace(" > on (", " < on (")
    alerts.write_text(yaml.safe_dump(document))
    result = promtool(broken / "tests", "CacheTooManyEntries")
    assert result.returncode != 0 and "CacheTooManyEntries: fires at" in result.stdout


def test_the_runbook_page_has_a_section_per_custom_alert(bundle: Path) -> None:
    page = (bundle / "docs/runbook-custom.md").read_text()
    for name in CUSTOM:
        assert f"\n## {name}\n" in page
    assert "Raise maxsize, or shorten the TTL." in page
    assert "Caches with their own threshold: `search_cache`: 100." in page
    assert page.count("_To write: what to check first") == len(CUSTOM) - 1  # the stubs
    assert "is equal to 100 for 5m; severity critical." in page


def test_without_custom_alerts_there_is_no_runbook_page(tmp_path: Path) -> None:
    assert main(["generate", "--output", str(tmp_path)]) == 0
    assert not (tmp_path / "docs").exists()
    assert not (Path(__file__).parent.parent / "docs/runbook-custom.md").exists()
