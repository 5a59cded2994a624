"""scripts/stack.py, the one local-stack launcher: its configs are the repository's with only
addresses, paths and timings rewritten, and the real servers accept them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from scripts import stack

from .servers import require_binary

ROOT = Path(__file__).resolve().parent.parent


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_localized_configs_rewrite_addresses_only(tmp_path: Path) -> None:
    original = load(ROOT / "alertmanager/alertmanager.yml")
    path = stack.render_alertmanager(
        tmp_path, smtp="127.0.0.1:2525", webhook_url="http://127.0.0.1:1/x",
        password_file=tmp_path / "pw",
    )  # fmt: skip
    local = load(path)
    assert local["route"] == original["route"]
    assert local["inhibit_rules"] == original["inhibit_rules"]
    assert local["global"]["smtp_smarthost"] == "127.0.0.1:2525"
    assert run(require_binary("amtool"), "check-config", str(path)).returncode == 0
    prom = stack.render_prometheus(
        tmp_path, targets={"cachewatch": ["127.0.0.1:1"]}, alertmanagers=["127.0.0.1:2"]
    )
    assert [j["job_name"] for j in load(prom)["scrape_configs"]] == ["cachewatch"]
    assert run(require_binary("promtool"), "check", "config", str(prom)).returncode == 0
    rules = sorted((tmp_path / "prometheus" / "rules").glob("*.yml"))
    committed = sorted((ROOT / "prometheus/rules").glob("*.yml"))
    assert [p.name for p in rules] == [p.name for p in committed]
    assert all(load(p) == load(ROOT / "prometheus/rules" / p.name) for p in rules)


def test_shortened_rules_change_windows_and_waits_only(tmp_path: Path) -> None:
    stack.render_prometheus(
        tmp_path, targets={}, alertmanagers=[], windows={"5m": "10s"}, waits={"5m": "2s"}
    )
    path = tmp_path / "prometheus" / "rules" / "cachewatch-recording.yml"
    shortened = path.read_text()
    original = (ROOT / "prometheus/rules/cachewatch-recording.yml").read_text()
    assert "[10s]" in shortened and "[5m]" not in shortened and "[5m]" in original
    assert run(require_binary("promtool"), "check", "rules", str(path)).returncode == 0


def test_native_stack_renders_configs_the_servers_accept(tmp_path: Path) -> None:
    result = run(sys.executable, "scripts/stack.py", "--render-only", "--workdir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    prom, am = result.stdout.split()
    assert run(require_binary("promtool"), "check", "config", prom).returncode == 0
    assert run(require_binary("amtool"), "check-config", am).returncode == 0
    assert "stack:" in (ROOT / "Makefile").read_text()


def test_fleet_stack_renders_clusters_that_remote_write_to_a_global_rule_evaluator(
    tmp_path: Path,
) -> None:
    argv = [sys.executable, "scripts/stack.py", "--fleet", "--render-only"]
    result = run(*argv, "--workdir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    paths = result.stdout.split()
    clusters = [p for p in paths if "/prometheus-" in p and "global" not in p]
    (global_config,) = [p for p in paths if "prometheus-global" in p]
    (am,) = [p for p in paths if "alertmanager" in p]
    for path in (*clusters, global_config):
        assert run(require_binary("promtool"), "check", "config", path).returncode == 0, path
    assert run(require_binary("amtool"), "check-config", am).returncode == 0
    assert sorted(load(Path(p))["global"]["external_labels"]["cluster"] for p in clusters) == [
        "a",
        "b",
    ]
    for path in clusters:
        config = load(Path(path))
        assert config["rule_files"] == [] and "alerting" not in config
        assert config["remote_write"][0]["url"].endswith("/api/v1/write")
    config = load(Path(global_config))
    assert config["scrape_configs"] == [] and len(config["rule_files"]) == 3
    recording = (Path(global_config).parent / "rules/cachewatch-recording.yml").read_text()
    assert "sum by (cluster, job, cache)" in recording
    assert load(Path(am))["route"]["group_by"] == ["alertname", "cluster", "job", "cache"]
    assert "stack-fleet:" in (ROOT / "Makefile").read_text()
