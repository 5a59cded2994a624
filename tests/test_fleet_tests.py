"""The fleet's promtool tests (two services, three instances): they pass on the generated
rules for any group labels, and fail on rules that merge services or split a service into
its replicas."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from cachewatch.cli import main
from cachewatch.config import load_config

from .servers import require_binary

ROOT = Path(__file__).resolve().parent.parent
FLEET = "cachewatch-fleet.test.yml"


def promtool(tests: Path, *files: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("promtool"), "test", "rules", *files],
        cwd=tests,
        capture_output=True,
        text=True,
        timeout=120,
    )


def generated(tmp_path: Path, labels: str) -> Path:
    out = tmp_path / labels.replace(",", "-")
    assert main(["generate", "--bundle.group-labels", labels, "--output", str(out)]) == 0
    return out / "prometheus"


@pytest.mark.parametrize("labels", ["job", "cluster,namespace,job"])
def test_every_promtool_test_passes_for_these_group_labels(tmp_path: Path, labels: str) -> None:
    prometheus = generated(tmp_path, labels)
    files = sorted(p.name for p in (prometheus / "tests").glob("*.yml"))
    result = promtool(prometheus / "tests", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    fleet = yaml.safe_load((prometheus / "tests" / FLEET).read_text())
    series = [s["series"] for t in fleet["tests"] for s in t["input_series"]]
    instances = {m for s in series for m in re.findall(r'instance="([^"]+)"', s)}
    assert len(instances - {"exporter-0:10287", "exporter-1:10287"}) == 3
    for label in labels.split(","):
        assert len({m for s in series for m in re.findall(rf'{label}="([^"]+)"', s)}) >= 2


def test_the_fleet_cases_cover_merging_and_aggregation() -> None:
    fleet = yaml.safe_load((ROOT / "prometheus/tests" / FLEET).read_text())
    names = {t["name"] for t in fleet["tests"]}
    assert {
        "fleet: two services with the same cache never merge",
        "fleet: the hit ratio of a service is over all its replicas",
        "fleet: the idle guard counts the lookups of all replicas",
        "fleet: memory alerts name the replica that holds it",
        "fleet: a source down names its replica",
        "fleet: one exporter replica down is one alert",
    } <= names
    memory = next(t for t in fleet["tests"] if "memory" in t["name"])
    (check,) = memory["alert_rule_test"]
    fired = {(a["exp_labels"]["job"], a["exp_labels"]["instance"]) for a in check["exp_alerts"]}
    assert fired == {("search-api", "search-0:8000"), ("ranking-api", "ranking-0:8000")}


def _rewritten(tmp_path: Path, old: str, new: str) -> Path:
    copy = tmp_path / "broken"
    shutil.copytree(ROOT / "prometheus", copy)
    for rules in (copy / "rules").glob("cachewatch-*.yml"):
        text = rules.read_text()
        assert old in text
        rules.write_text(text.replace(old, new))
    return copy / "tests"


def test_rules_that_merge_services_fail_the_fleet_tests(tmp_path: Path) -> None:
    """Aggregating by cache alone (what the rules did before group labels)."""
    tests = _rewritten(tmp_path, "(job, cache)", "(cache)")
    result = promtool(tests, FLEET)
    assert result.returncode != 0
    assert "two services with the same cache never merge" in result.stdout + result.stderr


def test_rules_that_split_a_service_into_replicas_fail_the_fleet_tests(tmp_path: Path) -> None:
    tests = _rewritten(tmp_path, "(job, cache)", "(job, instance, cache)")
    result = promtool(tests, FLEET)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "the hit ratio of a service is over all its replicas" in out
    assert "the idle guard counts the lookups of all replicas" in out


def test_memory_rules_without_instance_fail_the_fleet_tests(tmp_path: Path) -> None:
    tests = _rewritten(tmp_path, "(job, instance, cache)", "(job, cache)")
    result = promtool(tests, FLEET)
    assert result.returncode != 0
    assert "memory alerts name the replica that holds it" in result.stdout + result.stderr


def test_group_labels_come_from_flags_environment_and_yaml(tmp_path: Path) -> None:
    assert load_config("generate").group_labels == ("job",)
    flags = {"group_labels": "cluster, job"}
    assert load_config("generate", flags, environ={}).group_labels == ("cluster", "job")
    environ = {"CACHEWATCH_BUNDLE_GROUP_LABELS": "namespace,job"}
    assert load_config("generate", environ=environ).group_labels == ("namespace", "job")
    settings = tmp_path / "cachewatch.yml"
    settings.write_text("bundle:\n  group_labels: [cluster, namespace, job]\n")
    from_yaml = load_config("generate", {"config_file": str(settings)}, environ={})
    assert from_yaml.group_labels == ("cluster", "namespace", "job")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "needs at least one label name"),
        ("job,cache", "'cache' is set by the rules themselves"),
        ("job,instance", "'instance' is set by the rules themselves"),
        ("job,9lives", "invalid label name '9lives'"),
        ("__name__", "invalid label name '__name__'"),
        ("job,job", "a label is named twice"),
    ],
)
def test_bad_group_labels_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    argv = ["generate", "--bundle.group-labels", value, "--output", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert err.startswith("cachewatch: error: --bundle.group-labels: ")
    assert not any(tmp_path.iterdir())
