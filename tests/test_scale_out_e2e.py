"""End to end at scale: two clusters remote-writing to a global Prometheus that evaluates the
rules generated with ``cluster,job`` as group labels. Alerts fire per cluster and service,
never merged; a service's signals aggregate over its replicas; Alertmanager groups per
cluster and service; every dashboard query returns data for each cluster, and the
dashboard variables offer what the global Prometheus holds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from . import dashboard_queries as dq
from .fleet_stack import BAD, CLUSTERS, SERVICES, Fleet, fleet_stack
from .topology import DEPLOYED_REDIS_TARGETS

pytestmark = pytest.mark.slow

ALERT = "CacheHitRatioLow"
CACHE = "search_cache"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with fleet_stack(tmp_path_factory.mktemp("fleet")) as running:
        yield running


def _services(series: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(s["metric"]["cluster"], s["metric"]["job"]) for s in series}


def test_remote_written_series_carry_their_cluster(fleet: Fleet) -> None:
    api = fleet.api
    found = api.wait_until(
        lambda: (
            _services(api.query(f'cache_gets_total{{cache="{CACHE}"}}'))
            == {(c, s) for c in CLUSTERS for s in SERVICES}
        ),
        30,
        "every cluster's series in the global Prometheus",
    )
    assert found
    # Each cluster's own Prometheus holds only its own exporters, without the label.
    answer = requests.get(
        f"{fleet.clusters['a']}/api/v1/query", params={"query": "count(up)"}, timeout=10
    ).json()
    exporters = sum(SERVICES.values()) + 1 + DEPLOYED_REDIS_TARGETS
    assert int(answer["data"]["result"][0]["value"][1]) == exporters


def test_a_service_aggregates_over_its_replicas_and_never_merges(fleet: Fleet) -> None:
    api = fleet.api
    everyone = {(c, s) for c in CLUSTERS for s in SERVICES}
    requests_per_service = api.wait_until(  # every cluster's, not the first one's alone
        lambda: (
            (found := api.query(f'cache:requests:rate5m{{cache="{CACHE}"}}'))
            and _services(found) == everyone
            and found
        ),
        60,
        "the recording rules over remote-written data",
    )
    assert _services(requests_per_service) == {(c, s) for c in CLUSTERS for s in SERVICES}
    assert all("instance" not in s["metric"] for s in requests_per_service)
    for cluster in CLUSTERS:
        replicas = api.query(
            f'sum by (instance) (rate(cache_gets_total{{cluster="{cluster}",'
            f'job="search-api",cache="{CACHE}"}}[10s]))'
        )
        assert len(replicas) == SERVICES["search-api"]
    memory = api.query(f'cache:memory_limit_ratio{{cache="{CACHE}"}}')
    assert len(memory) == len(CLUSTERS) * sum(SERVICES.values())  # per process


def test_alerts_fire_per_cluster_and_service(fleet: Fleet) -> None:
    api = fleet.api

    def critical() -> set[tuple[str, str]]:
        found = [
            a
            for a in api.prometheus_alerts(ALERT)
            if a["labels"]["severity"] == "critical" and a["labels"]["cache"] == CACHE
        ]
        return {(a["labels"]["cluster"], a["labels"]["job"]) for a in found}

    assert api.wait_until(lambda: critical() == BAD, 60, f"{ALERT} for {sorted(BAD)}")
    firing = [a for a in api.prometheus_alerts(ALERT) if a["labels"]["cache"] == CACHE]
    assert {(a["labels"]["cluster"], a["labels"]["job"]) for a in firing} == BAD
    assert all("instance" not in a["labels"] for a in firing)
    one = next(a for a in firing if a["labels"]["cluster"] == "a")
    assert one["annotations"]["summary"].endswith(f"cache {CACHE} of cluster a, job search-api")
    assert (
        "var-cluster=a&var-job=search-api&var-cache=search_cache"
        in (one["annotations"]["dashboard_url"])
    )

    def groups() -> list[dict[str, Any]]:
        """The critical receiver's groups of the alert: one per cluster and service."""
        found = requests.get(f"{api.alertmanager}/api/v2/alerts/groups", timeout=5).json()
        return [
            g
            for g in found
            if g["labels"].get("alertname") == ALERT and g["receiver"]["name"] == "critical"
        ]

    got = api.wait_until(lambda: len(groups()) == len(BAD) and groups(), 30, "two groups")
    assert {(g["labels"]["cluster"], g["labels"]["job"]) for g in got} == BAD
    assert all(len(g["alerts"]) == 1 for g in got)
    hook = fleet.webhooks.wait_for(
        lambda p: (
            p.get("commonLabels", {}).get("alertname") == ALERT
            and p["commonLabels"].get("cluster") == "b"
        ),
        30,
        "a notification for cluster b alone",
    )
    assert {a["labels"]["cluster"] for a in hook["alerts"]} == {"b"}
    assert hook["commonLabels"]["job"] == "ranking-api"


def test_dashboard_variables_offer_the_fleet(fleet: Fleet) -> None:
    dashboards = dict(dq.dashboards(fleet.bundle))
    detail = dashboards["cache-detail"]
    values = fleet.api.wait_until(
        lambda: (v := dq.variable_values(detail, fleet.api.label_values)) and v["cache"] and v,
        30,
        "variable values",
    )
    assert [v["name"] for v in detail["templating"]["list"]] == [
        "cluster",
        "job",
        "instance",
        "cache",
    ]
    assert values["cluster"] == list(CLUSTERS)
    assert set(values["job"]) == {*SERVICES, "cachewatch"}
    assert len(values["instance"]) == len(CLUSTERS) * (sum(SERVICES.values()) + 1)
    chosen = dq.variable_values(
        detail, fleet.api.label_values, {"cluster": "a", "job": "search-api"}
    )
    assert len(chosen["instance"]) == SERVICES["search-api"]
    assert CACHE in chosen["cache"]
    redis = dq.variable_values(dashboards["redis-server"], fleet.api.label_values)
    assert redis["cluster"] == list(CLUSTERS) and redis["job"] == ["cachewatch"]


def test_every_dashboard_query_returns_data_per_cluster(fleet: Fleet) -> None:
    api = fleet.api
    api.wait_until(
        lambda: (
            api.query('count by (cluster) (ALERTS{alertstate="firing"})')
            and len(api.query('count by (cluster) (ALERTS{alertstate="firing"})')) == len(CLUSTERS)
        ),
        60,
        "a firing alert in each cluster",
    )
    api.wait_until(
        lambda: (
            len(api.query("count by (cluster) (cachewatch_cache_memory_full_seconds)"))
            == len(CLUSTERS)
        ),
        60,
        "the trend gauges of each cluster",
    )
    empty: list[str] = []
    checked = 0
    for name, dashboard in dq.dashboards(fleet.bundle):
        for cluster in CLUSTERS:
            fixed = {"cluster": cluster}
            values = dq.variable_values(dashboard, api.label_values, fixed)
            for title, expr, tries in dq.queries(dashboard, values, fixed, rate_interval="15s"):
                checked += 1
                if not any(api.query_range(e, 60) for e in tries):
                    empty.append(f"{name} / cluster {cluster} / {title} / {expr}")
    assert checked > 160
    assert not empty, "dashboard queries without data:\n" + "\n".join(empty)
