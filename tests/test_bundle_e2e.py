"""End to end: the repository's rules and routing with real Prometheus, Alertmanager, SMTP
and webhook receivers; every dashboard query against the same Prometheus."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from cachewatch.cli import main

from . import dashboard_queries as dq
from .bundle_stack import ROOT, TARGET_CACHE, Stack, bundle_stack
from .receivers import mail_text

pytestmark = pytest.mark.slow

ALERT = "CacheHitRatioLow"
FIRING_SUBJECT = f"[cachewatch] FIRING:1 CRITICAL {ALERT} cache={TARGET_CACHE} job=cachewatch"
RESOLVED_SUBJECT = f"[cachewatch] RESOLVED CRITICAL {ALERT} cache={TARGET_CACHE} job=cachewatch"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with bundle_stack(tmp_path_factory.mktemp("bundle")) as running:
        yield running


def _is_target(payload: dict[str, Any], status: str) -> bool:
    labels = payload.get("commonLabels", {})
    return (
        payload.get("status") == status
        and labels.get("alertname") == ALERT
        and labels.get("cache") == TARGET_CACHE
        and labels.get("severity") == "critical"
    )


def test_hit_ratio_alert_notifies_resolves_and_ack_silences(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.wait_until(
        lambda: stack.query(f'cache:requests:rate5m{{cache="{TARGET_CACHE}"}}'),
        30,
        "traffic reaching the recording rules",
    )
    assert not stack.prometheus_alerts(ALERT), "the alert fired while the cache was healthy"

    stack.workload.mode = "bad"
    firing = stack.wait_until(
        lambda: [
            a for a in stack.prometheus_alerts(ALERT) if a["labels"]["severity"] == "critical"
        ],
        60,
        f"{ALERT} critical firing in Prometheus",
    )
    assert firing[0]["labels"]["cache"] == TARGET_CACHE
    assert firing[0]["annotations"]["runbook_url"].endswith("#cachehitratiolow")
    hook = stack.webhooks.wait_for(lambda p: _is_target(p, "firing"), 30, "firing webhook")
    alert = hook["alerts"][0]
    assert alert["annotations"]["threshold"] == "50%"
    assert alert["annotations"]["dashboard_url"].endswith(
        f"?var-job=cachewatch&var-cache={TARGET_CACHE}"
    )
    assert alert["annotations"]["summary"].endswith(f"cache {TARGET_CACHE} of job cachewatch")
    inhibited = stack.wait_until(
        lambda: _am_alerts(stack, "suppressed", "warning"), 30, "the warning inhibited"
    )
    assert inhibited[0]["status"]["inhibitedBy"], inhibited
    mail = stack.mails.wait_for(lambda m: m["Subject"] == FIRING_SUBJECT, 30, "firing e-mail")
    body = mail_text(mail)
    assert f"Cache:     {TARGET_CACHE}" in body and "Runbook:" in body, body
    assert "Job:       cachewatch" in body and "--label job=cachewatch" in body, body

    stack.workload.mode = "good"
    stack.webhooks.wait_for(lambda p: _is_target(p, "resolved"), 60, "resolved webhook")
    stack.mails.wait_for(lambda m: m["Subject"] == RESOLVED_SUBJECT, 30, "resolved e-mail")

    url = ["--alertmanager.url", stack.alertmanager]
    assert (
        main(
            [
                "alerts",
                "ack",
                ALERT,
                "--cache",
                TARGET_CACHE,
                "--label",
                "job=cachewatch",
                "--duration",
                "2h",
                "--comment",
                "end-to-end test",
                *url,
            ]
        )
        == 0
    )
    silence_id = re.search(r"silence (\S+)", capsys.readouterr().out)
    assert silence_id, "ack printed no silence id"
    assert main(["alerts", "silences", *url]) == 0
    silences = capsys.readouterr().out
    assert silence_id.group(1) in silences
    assert f"alertname={ALERT},cache={TARGET_CACHE},job=cachewatch" in silences

    before = len(stack.webhooks.items())
    stack.workload.mode = "bad"
    try:
        suppressed = stack.wait_until(
            lambda: _am_alerts(stack, "suppressed"), 60, f"{ALERT} suppressed in Alertmanager"
        )
        assert silence_id.group(1) in suppressed[0]["status"]["silencedBy"]
        assert stack.prometheus_alerts(ALERT), "Prometheus no longer fires the alert"
        assert main(["alerts", "list", *url]) == 0
        assert f"{ALERT} severity=critical cache={TARGET_CACHE}" in capsys.readouterr().out
        time.sleep(5)  # well over group_wait + group_interval: a notification would be here
        late = [
            p
            for p in stack.webhooks.items()[before:]
            if p["commonLabels"].get("alertname") == ALERT and p["status"] == "firing"
        ]
        assert not late, f"a silenced alert was notified: {late}"
    finally:
        stack.workload.mode = "good"


def _am_alerts(stack: Stack, state: str, severity: str = "critical") -> list[dict[str, Any]]:
    found = requests.get(f"{stack.alertmanager}/api/v2/alerts", timeout=5).json()
    return [
        a
        for a in found
        if a["labels"].get("alertname") == ALERT
        and a["labels"].get("cache") == TARGET_CACHE
        and a["labels"].get("severity") == severity
        and a["status"]["state"] == state
    ]


def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    # ALERTS has data once any rule was pending or firing: make sure one fires now.
    if not stack.query_range('ALERTS{alertname=~"Cache.*",alertstate="firing"}', 20):
        stack.workload.mode = "bad"
        try:
            stack.wait_until(lambda: stack.prometheus_alerts(ALERT), 60, f"{ALERT} firing")
        finally:
            stack.workload.mode = "good"
    stack.wait_until(
        lambda: stack.query("cachewatch_cache_memory_full_seconds"), 30, "the trend gauges"
    )
    empty: list[str] = []
    checked = 0
    for name, dashboard in dq.dashboards(ROOT):
        values = dq.variable_values(dashboard, stack.label_values)
        for var, found in values.items():
            assert found, f"{name}: variable ${var} has no values"
        assert values["job"] and values["instance"], name
        for title, expr, tries in dq.queries(dashboard, values):
            checked += 1
            if not any(stack.query_range(e) for e in tries):
                empty.append(f"{name} / {title} / {expr}")
    assert checked > 80
    assert not empty, "dashboard queries without data:\n" + "\n".join(empty)


def test_dashboard_variables_offer_what_prometheus_holds(stack: Stack) -> None:
    dashboard = dict(dq.dashboards(ROOT))["cache-detail"]
    values = dq.variable_values(dashboard, stack.label_values)
    assert values["job"] == ["cachewatch"]
    assert values["instance"] == [f"127.0.0.1:{stack.exporter_port}"]
    assert {TARGET_CACHE, "growing_cache", "sessions"} <= set(values["cache"])
    elsewhere = dq.variable_values(dashboard, stack.label_values, {"job": "no-such-service"})
    assert elsewhere["instance"] == [] and elsewhere["cache"] == []


def test_latency_exemplars_lead_to_received_traces(stack: Stack) -> None:
    """Grafana links an exemplar's trace_id to Jaeger: the id must be a trace that was sent."""
    bucket = f'cachewatch_cache_operation_duration_seconds_bucket{{cache="{TARGET_CACHE}"}}'

    def exemplar_ids() -> set[str]:
        end = time.time()
        answer = requests.get(
            f"{stack.prometheus}/api/v1/query_exemplars",
            params={"query": bucket, "start": end - 120, "end": end},
            timeout=10,
        ).json()
        assert answer["status"] == "success", answer
        return {
            e["labels"]["trace_id"]
            for series in answer["data"]
            for e in series["exemplars"]
            if "trace_id" in e["labels"]
        }

    ids = stack.wait_until(exemplar_ids, 30, "exemplars with trace ids in Prometheus")
    sent = stack.wait_until(
        lambda: ids & {span.trace_id for span in stack.traces.received()},
        30,
        "an exemplar's trace among the spans the OTLP receiver got",
    )
    assert all(re.fullmatch(r"[0-9a-f]{32}", trace_id) for trace_id in sent)


def test_exporter_thresholds_agree_with_the_committed_rules(stack: Stack) -> None:
    """One source of truth: what the exporter publishes is what the rules evaluate, and the
    rules' fallback when no exporter publishes it is the same threshold."""
    import yaml

    from cachewatch.analysis.definitions import alert_definitions
    from cachewatch.bundle.promql import fmt_number
    from cachewatch.config import Config

    published = {
        (s["metric"]["alertname"], s["metric"]["severity"]): float(s["value"][1])
        for s in stack.wait_until(
            lambda: stack.query('cachewatch_alert_threshold{cache=""}'), 30, "thresholds scraped"
        )
    }
    in_force = {
        (s["metric"]["alertname"], s["metric"]["severity"]): float(s["value"][1])
        for s in stack.wait_until(
            lambda: stack.query(f'cache:alert_threshold{{cache="{TARGET_CACHE}"}}'),
            30,
            "thresholds in force recorded",
        )
    }
    document = yaml.safe_load((ROOT / "prometheus/rules/cachewatch-recording.yml").read_text())
    fallbacks = {
        (r["labels"]["alertname"], r["labels"]["severity"]): r["expr"]
        for r in document["groups"][0]["rules"]
        if r["record"] == "cache:alert_threshold"
    }
    checked = 0
    for definition in alert_definitions(Config()):
        if not definition.per_cache:
            continue
        for threshold in definition.thresholds:
            key = (definition.name, threshold.severity)
            assert published.get(key) == pytest.approx(threshold.value), key
            assert fallbacks[key].endswith(f" * {fmt_number(threshold.value)}"), key
            if key in in_force:  # the alerts whose signal the cache has
                assert in_force[key] == pytest.approx(threshold.value), key
            checked += 1
    assert checked >= 10 and len(in_force) >= 5
