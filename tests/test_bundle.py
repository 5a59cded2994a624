"""The bundle's files: generated and current, accepted by promtool, amtool and
docker-compose, routed as documented; the alerts commands' errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from cachewatch.analysis.definitions import alert_definitions
from cachewatch.bundle.generate import render_all
from cachewatch.bundle.rules import DASHBOARD_UIDS
from cachewatch.cli import main
from cachewatch.config import Config

from .servers import free_port, require_binary

ROOT = Path(__file__).resolve().parent.parent


def run(
    *argv: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, env=env)


def rules_documents() -> list[dict[str, Any]]:
    return [
        yaml.safe_load(p.read_text()) for p in sorted((ROOT / "prometheus/rules").glob("*.yml"))
    ]


def alert_rules() -> list[dict[str, Any]]:
    return [
        r for doc in rules_documents() for g in doc["groups"] for r in g["rules"] if "alert" in r
    ]


# --- generated files -----------------------------------------------------------------------
def test_committed_generated_files_are_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--check", "--output", str(ROOT)]) == 0, capsys.readouterr().err


def test_check_names_stale_and_missing_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "--output", str(tmp_path)]) == 0
    alerts = tmp_path / "prometheus/rules/cachewatch-alerts.yml"
    alerts.write_text(alerts.read_text().replace("rate5m >= 1", "rate5m >= 2"))
    (tmp_path / "grafana/dashboards/cachewatch.json").unlink()
    capsys.readouterr()
    assert main(["generate", "--check", "--output", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "prometheus/rules/cachewatch-alerts.yml" in err
    assert "grafana/dashboards/cachewatch.json" in err
    assert "redis-alerts.yml" not in err


def test_other_thresholds_from_yaml_regenerate_rules_tests_and_dashboards(tmp_path: Path) -> None:
    settings = tmp_path / "cachewatch.yml"
    settings.write_text(
        "alerts:\n  hit_ratio_warning: 0.9\n  hit_ratio_critical: 0.6\n  memory_warning_mb: 100\n"
        "  memory_critical_mb: 300\n  for: 2m\n  escalate_after: 10m\n"
        "  latency_p99_warning: 250ms\n"
        "  error_ratio_warning: 0.1\n  error_ratio_critical: 0.3\n  cleanup_stalled_factor: 5\n"
        "  eviction_ratio_warning: 0.5\n  memory_full_soon: 1h\n  rate_window: 10m\n"
    )
    out = tmp_path / "out"
    assert main(["generate", "--config.file", str(settings), "--output", str(out)]) == 0
    alerts = yaml.safe_load((out / "prometheus/rules/cachewatch-alerts.yml").read_text())
    hit = [r for r in alerts["groups"][0]["rules"] if r["alert"] == "CacheHitRatioLow"]
    assert all(r["expr"].lstrip("( \n").startswith("cache:hit_ratio:rate10m\n") for r in hit)
    recording = (out / "prometheus/rules/cachewatch-recording.yml").read_text()
    lookups = {
        (r["labels"]["alertname"], r["labels"]["severity"]): r["expr"]
        for r in yaml.safe_load(recording)["groups"][0]["rules"]
        if r["record"] == "cache:alert_threshold"
    }  # the thresholds generated as the fallback of the exporter's series
    assert lookups[("CacheHitRatioLow", "warning")].endswith("(cache:hit_ratio:rate10m) * 0.9")
    assert lookups[("CacheHitRatioLow", "critical")].endswith("(cache:hit_ratio:rate10m) * 0.6")
    assert "rate(cache_gets_total[10m])" in recording and "[5m]" not in recording
    assert sorted(r["for"] for r in hit) == ["12m", "2m", "2m"]
    for name in ("cachewatch-alerts.test.yml", "redis-alerts.test.yml"):
        result = run(
            require_binary("promtool"), "test", "rules", name, cwd=out / "prometheus/tests"
        )
        assert result.returncode == 0, result.stdout + result.stderr
    overview = json.loads((out / "grafana/dashboards/cache-overview.json").read_text())
    steps = [
        s["value"]
        for s in panel(overview, "Hit ratio")["fieldConfig"]["defaults"]["thresholds"]["steps"]
    ]
    assert steps == [None, 0.6, 0.9]
    # The committed files are for the defaults: the check against them names the changes.
    assert main(["generate", "--config.file", str(settings), "--check", "--output", str(ROOT)]) == 1


def panel(dashboard: dict[str, Any], title: str) -> dict[str, Any]:
    return next(p for p in dashboard["panels"] if p["title"] == title)


# --- Prometheus ----------------------------------------------------------------------------
def test_promtool_accepts_config_and_rules() -> None:
    result = run(require_binary("promtool"), "check", "config", "prometheus/prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 3 rule files found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    tests = sorted(p.name for p in (ROOT / "prometheus/tests").glob("*.yml"))
    assert len(tests) == 3
    result = run(require_binary("promtool"), "test", "rules", *tests, cwd=ROOT / "prometheus/tests")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_tests_cover_firing_quiet_escalation_and_idle_guard() -> None:
    document = yaml.safe_load((ROOT / "prometheus/tests/cachewatch-alerts.test.yml").read_text())
    names = {t["name"] for t in document["tests"]}
    checks = [c for t in document["tests"] for c in t["alert_rule_test"]]
    for definition in alert_definitions(Config()):
        mine = [c for c in checks if c["alertname"] == definition.name]
        assert any(c["exp_alerts"] for c in mine), f"{definition.name} never fires"
        assert any(not c["exp_alerts"] for c in mine), f"{definition.name} never stays quiet"
        if definition.escalates:
            assert any(
                a["exp_labels"].get("escalated") == "true" for c in mine for a in c["exp_alerts"]
            ), f"{definition.name} never escalates"
    assert "CacheHitRatioLow: idle cache never alerts" in names


def test_a_broken_rule_fails_the_promtool_tests(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "prometheus", tmp_path / "prometheus")
    alerts = tmp_path / "prometheus/rules/cachewatch-alerts.yml"
    alerts.write_text(
        alerts.read_text().replace("cache:requests:rate5m >= 1", "cache:requests:rate5m >= 0")
    )
    result = run(
        require_binary("promtool"),
        "test",
        "rules",
        "cachewatch-alerts.test.yml",
        cwd=tmp_path / "prometheus/tests",
    )
    assert result.returncode != 0 and "idle cache never alerts" in result.stdout + result.stderr


def test_every_alert_has_severity_annotations_runbook_section_and_dashboard() -> None:
    runbook = (ROOT / "docs/runbook.md").read_text()
    sections = {h.lower() for h in re.findall(r"^## (\w+)$", runbook, re.M)}
    rules = alert_rules()
    names = {r["alert"] for r in rules}
    expected = {d.name for d in alert_definitions(Config())} | {
        "CachewatchExporterDown",
        "RedisDown",
        "RedisMemoryNearMax",
        "RedisRejectedConnections",
        "RedisReplicationBroken",
        "RedisReplicaLagHigh",
        "RedisReplicasDisconnected",
        "RedisSentinelMasterNotOk",
        "RedisSentinelsTooFew",
        "RedisClusterStateNotOk",
        "RedisClusterSlotsFailing",
    }
    assert names == expected
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical")
        notes = rule["annotations"]
        assert {"summary", "description", "runbook_url", "dashboard_url"} <= notes.keys()
        anchor = notes["runbook_url"].rsplit("#", 1)[1]
        assert anchor == rule["alert"].lower() and anchor in sections
        uid = re.search(r"/d/([\w-]+)", notes["dashboard_url"]).group(1)  # type: ignore[union-attr]
        assert uid in DASHBOARD_UIDS.values()


def test_warnings_escalate_to_critical_after_the_escalation_time() -> None:
    rules = alert_rules()
    for warning in (
        r for r in rules if r["labels"]["severity"] == "warning" and r["alert"].startswith("Cache")
    ):
        escalated = [
            r
            for r in rules
            if r["alert"] == warning["alert"]
            and r["labels"].get("escalated") == "true"
            and warning["expr"].replace("\n", "\n  ") in r["expr"]
        ]
        assert len(escalated) == 1, warning["alert"]
        switch = f'cache:alert_escalation{{alertname="{warning["alert"]}"}} == 1'
        assert switch in escalated[0]["expr"]  # while the exporter says it escalates
        assert escalated[0]["labels"]["severity"] == "critical"
        assert (warning["for"], escalated[0]["for"]) == ("5m", "35m")


# --- Alertmanager --------------------------------------------------------------------------
def am_config() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "alertmanager/alertmanager.yml").read_text())  # type: ignore[no-any-return]


def test_amtool_accepts_the_config() -> None:
    result = run(require_binary("amtool"), "check-config", "alertmanager/alertmanager.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 templates" in result.stdout and "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=warning", "alertname=CacheHitRatioLow", "cache=a"], "webhook"),
        (["severity=critical", "alertname=CacheHitRatioLow", "cache=a"], "critical"),
        (
            ["severity=critical", "alertname=CacheMemoryHigh", "cache=a", "escalated=true"],
            "critical",
        ),
        (["severity=critical", "alertname=RedisDown", "instance=redis:6379"], "critical"),
        (["alertname=Unlabelled"], "webhook"),
    ],
)
def test_amtool_routes(labels: list[str], receiver: str) -> None:
    result = run(
        require_binary("amtool"),
        "config",
        "routes",
        "test",
        "--config.file=alertmanager/alertmanager.yml",
        *labels,
    )
    assert result.stdout.strip() == receiver, result.stdout + result.stderr


def test_routing_cooldown_inhibition_and_receivers() -> None:
    config = am_config()
    route = config["route"]
    assert route["group_by"] == ["alertname", "job", "cache"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == (
        "30s",
        "5m",
        "4h",
    )
    (inhibit,) = config["inhibit_rules"]
    assert inhibit["source_matchers"] == ['severity="critical"']
    assert inhibit["target_matchers"] == ['severity="warning"']
    assert inhibit["equal"] == ["alertname", "job", "cache", "instance"]
    receivers = {r["name"]: r for r in config["receivers"]}
    assert set(receivers["critical"]) == {"name", "email_configs", "webhook_configs"}
    assert set(receivers["webhook"]) == {"name", "webhook_configs"}
    assert all(
        c["send_resolved"]
        for r in receivers.values()
        for k in ("email_configs", "webhook_configs")
        for c in r.get(k, [])
    )


def test_smtp_password_comes_from_a_file_and_is_never_committed() -> None:
    text = (ROOT / "alertmanager/alertmanager.yml").read_text()
    config = am_config()
    assert "smtp_auth_password" not in config["global"]
    assert config["global"]["smtp_auth_password_file"].startswith("/run/secrets/")
    assert not re.search(r"^\s*(smtp_)?auth_password\s*:", text, re.M)
    assert ".env" in (ROOT / ".gitignore").read_text().split()


# --- the alerts commands -------------------------------------------------------------------
def test_alerts_commands_fail_in_one_line_when_alertmanager_is_unreachable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for argv in (["list"], ["silences"], ["ack", "CacheHitRatioLow", "--comment", "x"]):
        assert main(["alerts", *argv, "--alertmanager.url", url]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"Alertmanager at {url} is unreachable" in err


def test_generate_refuses_a_rate_window_too_short_for_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["generate", "--alerts.rate-window", "30s", "--output", str(tmp_path)]
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("cachewatch: error: alerts.rate-window:")
    assert not any(tmp_path.iterdir())


def test_alerts_commands_reject_a_bad_alertmanager_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts", "list", "--alertmanager.url", "alertmanager:9093"]) == 2
    assert capsys.readouterr().err == (
        "cachewatch: error: --alertmanager.url: invalid URL 'alertmanager:9093' "
        "(use e.g. http://localhost:9093)\n"
    )


def test_alerts_ack_rejects_a_bad_duration_with_usage_status(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["alerts", "ack", "X", "--comment", "c", "--duration", "soon"]) == 2
    assert capsys.readouterr().err.startswith("cachewatch: error: --duration: invalid duration")


# --- Grafana -------------------------------------------------------------------------------
def dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in (ROOT / "grafana/dashboards").glob("*.json")}


def test_dashboards_have_descriptions_units_legends_and_config_thresholds() -> None:
    found = dashboards()
    assert {d["uid"] for d in found.values()} == set(DASHBOARD_UIDS.values())
    for name, dashboard in found.items():
        for p in dashboard["panels"]:
            where = f"{name}/{p['title']}"
            assert p["description"], where
            assert p["fieldConfig"]["defaults"]["unit"], where
            assert p["targets"] and all(t["legendFormat"] for t in p["targets"]), where
            assert all(t["datasource"]["uid"] == "prometheus" for t in p["targets"]), where
    detail = found["cache-detail"]
    assert [v["name"] for v in detail["templating"]["list"]] == ["job", "instance", "cache"]
    hit = panel(detail, "Hit ratio")
    assert [s["value"] for s in hit["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [
        None,
        0.5,
        0.8,
    ]
    assert any("cachewatch_alert_threshold" in t["expr"] for t in hit["targets"])
    latency = panel(detail, "Operation latency p50 / p95 / p99")
    assert any(t.get("exemplar") for t in latency["targets"])


def test_grafana_provisioning_links_exemplars_to_jaeger() -> None:
    doc = yaml.safe_load((ROOT / "grafana/provisioning/datasources/cachewatch.yml").read_text())
    by_uid = {d["uid"]: d for d in doc["datasources"]}
    assert {"prometheus", "jaeger", "alertmanager"} <= by_uid.keys()
    link = by_uid["prometheus"]["jsonData"]["exemplarTraceIdDestinations"][0]
    assert link == {"name": "trace_id", "datasourceUid": "jaeger"}
    providers = yaml.safe_load(
        (ROOT / "grafana/provisioning/dashboards/cachewatch.yml").read_text()
    )
    path = providers["providers"][0]["options"]["path"]
    grafana = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["grafana"]
    assert f"./grafana/dashboards:{path}:ro" in grafana["volumes"]


# --- docker-compose ------------------------------------------------------------------------
def compose(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if k not in ("GRAFANA_ADMIN_PASSWORD", "SMTP_PASSWORD")
    }
    return run(
        require_binary("docker-compose"), "-f", "docker-compose.yml", "config", env={**clean, **env}
    )


def test_compose_file_is_valid_and_complete() -> None:
    result = compose({"GRAFANA_ADMIN_PASSWORD": "s3cret-admin", "SMTP_PASSWORD": "s3cret-smtp"})
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == {
        "redis",
        "exporter",
        "demo",
        "prometheus",
        "alertmanager",
        "grafana",
        "jaeger",
        "mailpit",
        "webhook",
    }
    dockerfile = (ROOT / "Dockerfile").read_text()
    for name, service in services.items():
        if "build" in service:
            assert "HEALTHCHECK" in dockerfile, name
        else:
            assert re.fullmatch(r"[\w./-]+:v?\d[\w.-]*", service["image"]), service["image"]
            assert "healthcheck" in service, name
    assert "--enable-feature=exemplar-storage" in services["prometheus"]["command"]
    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "s3cret-admin"
    assert services["grafana"]["image"] == "grafana/grafana:11.6.0"
    assert any("4317" in str(p) for p in services["jaeger"]["ports"])
    assert services["alertmanager"]["image"].endswith(":v0.27.0")
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert user and user[-1].split(":")[0] not in ("root", "0")


def test_compose_refuses_to_start_without_the_secrets() -> None:
    result = compose({"SMTP_PASSWORD": "x"})
    assert result.returncode != 0 and "GRAFANA_ADMIN_PASSWORD" in result.stderr
    example = (ROOT / ".env.example").read_text()
    assert "GRAFANA_ADMIN_PASSWORD=" in example and "SMTP_PASSWORD=" in example


def test_render_all_is_deterministic() -> None:
    assert render_all(Config()) == render_all(Config())


# --- metric names: spelled in the catalogue ------------------------------------------------
PROMQL_WORDS = {
    "sum", "max", "min", "by", "on", "and", "or", "unless", "rate", "increase", "deriv",
    "predict_linear", "histogram_quantile", "clamp_min", "time", "le", "ALERTS", "topk",
    "bottomk", "count", "vector", "max_over_time", "group_right", "group", "group_left",
}  # fmt: skip
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
                  "process_resident_memory_bytes", "process_cpu_seconds_total"}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Series names an expression reads: label matchers, grouping and numbers removed."""
    bare = re.sub(r"\{[^}]*\}", "", expr)
    bare = re.sub(r"\b(by|on)\s*\([^)]*\)", "", bare)
    bare = re.sub(r"\[[^\]]*\]", "", bare)
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", bare))
    return {w for w in words if w not in PROMQL_WORDS and not re.fullmatch(r"\d.*", w)}


def test_rules_and_dashboards_read_only_catalogue_and_recorded_names() -> None:
    from cachewatch import catalog

    rules = [r for doc in rules_documents() for g in doc["groups"] for r in g["rules"]]
    recorded = {r["record"] for r in rules if "record" in r}
    known = set(catalog.BY_NAME) | recorded | PROMETHEUS_OWN
    known |= {f"{s.name}_bucket" for s in catalog.ALL if s.type == "histogram"}
    exprs = [r["expr"] for r in rules]
    exprs += [t["expr"] for d in dashboards().values() for p in d["panels"] for t in p["targets"]]
    used = set().union(*(metric_names(e) for e in exprs))
    assert "cache_gets_total" in used and "redis_up" in used
    assert used <= known, f"names not in the catalogue: {sorted(used - known)}"


def test_alerts_ack_rejects_a_bad_label_matcher(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts", "ack", "X", "--comment", "c", "--label", "job"]) == 2
    assert capsys.readouterr().err == (
        "cachewatch: error: --label: expected NAME=VALUE, got 'job'\n"
    )


def test_every_dashboard_query_is_filtered_by_the_variables_that_apply() -> None:
    """Group labels and cache always; instance wherever the series still has it (the recording
    rules of a service and Prometheus's ALERTS do not)."""
    checked = 0
    for name, dashboard in dashboards().items():
        template = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert list(template)[:2] == ["job", "instance"], name
        for var in ("job", "instance"):
            assert template[var]["multi"] and template[var]["includeAll"], (name, var)
            assert template[var]["allValue"] == ".*", (name, var)
        for p in dashboard["panels"]:
            for target in p["targets"]:
                expr, checked = target["expr"], checked + 1
                assert 'job=~"$job"' in expr, (name, p["title"], expr)
                if "cache" in template and "cachewatch_alert_threshold" not in expr:  # no cache
                    assert 'cache=~"$cache"' in expr, (name, p["title"], expr)
                raw = {n for n in metric_names(expr) if ":" not in n and n != "ALERTS"}
                if raw:
                    assert 'instance=~"$instance"' in expr, (name, p["title"], expr)
    assert checked > 80


def test_the_fleet_dashboard_leads_to_the_cache_detail() -> None:
    fleet = dashboards()["cache-fleet"]
    tables = [p for p in fleet["panels"] if p["type"] == "table"]
    assert {"Worst hit ratio", "Most misses"} <= {p["title"] for p in tables}
    for title in ("Worst hit ratio", "Most misses", "Highest error ratio", "Most memory"):
        (link,) = panel(fleet, title)["fieldConfig"]["defaults"]["links"]
        assert link["url"].startswith(f"/d/{DASHBOARD_UIDS['detail']}?")
        assert "var-job=${__data.fields.job}&var-cache=${__data.fields.cache}" in link["url"]
    worst = panel(fleet, "Worst hit ratio")["targets"][0]
    assert worst["format"] == "table" and worst["instant"]
    assert worst["expr"].startswith("bottomk(10, cache:hit_ratio:rate5m")
    overview = dashboards()["cache-overview"]
    (link,) = panel(overview, "Hit ratio")["fieldConfig"]["defaults"]["links"]
    assert "var-cache=${__field.labels.cache}" in link["url"]
