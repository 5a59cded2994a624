"""The OpenTelemetry metrics bridge: OTel API metrics on the same /metrics, same registry,
translated names, no scope labels unless wanted, and no collisions with cachewatch's names."""

from __future__ import annotations

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)

import cachewatch
from cachewatch import CacheRegistry, Exporter
from cachewatch.web.server import HttpServer

from .scrape import fetch, samples, value

OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0; charset=utf-8"}


def test_otel_metrics_appear_on_the_same_metrics_with_translated_names(
    exporter: Exporter, http: HttpServer, cache_table: CacheRegistry
) -> None:
    bridge = cachewatch.enable_otel_metrics(exporter, set_global=False)
    meter = bridge.meter("checkout-app", "1.2.3")
    requests = meter.create_counter("http.server.requests", unit="{request}", description="r")
    requests.add(3, {"http.route": "/cart"})
    duration = meter.create_histogram("db.client.operation.duration", unit="s")
    duration.record(0.02, {"db.system.name": "postgresql"})
    queue = meter.create_up_down_counter("queue.depth", unit="By")
    queue.add(512)
    cachewatch.instrument({"k": 1}, "own_cache", registry=cache_table).get("k")

    found = samples(http.port)
    assert value(found, "http_server_requests_total", http_route="/cart") == 3
    assert value(found, "db_client_operation_duration_seconds_count", db_system_name="postgresql")
    assert value(found, "queue_depth_bytes") == 512
    assert value(found, "cache_gets_total", cache="own_cache", result="hit") == 1
    labels = {label for (_, label_set) in found for label, _ in label_set}
    assert not any(label.startswith("otel_scope") for label in labels)
    assert not any(name == "target_info" for name, _ in found)


def test_colliding_names_are_published_under_otel_prefix(
    exporter: Exporter, http: HttpServer, cache_table: CacheRegistry
) -> None:
    bridge = cachewatch.enable_otel_metrics(exporter, set_global=False)
    meter = bridge.meter("some-instrumentation")
    meter.create_counter("cache.gets").add(7, {"cache": "own_cache"})
    meter.create_counter("cachewatch.build").add(1)
    meter.create_counter("process.cpu").add(2)
    cachewatch.instrument({"k": 1}, "own_cache", registry=cache_table).get("k")

    text = fetch(http.port, headers=OPENMETRICS)
    # the strict OpenMetrics parser rejects two families of one name
    names = [family.name for family in openmetrics_families(text)]
    assert len(names) == len(set(names))
    assert {"otel_cache_gets", "otel_cachewatch_build", "otel_process_cpu"} <= set(names)
    found = samples(http.port)
    assert value(found, "otel_cache_gets_total", cache="own_cache") == 7
    assert value(found, "cache_gets_total", cache="own_cache", result="hit") == 1


def test_scope_labels_only_when_wanted(exporter: Exporter, http: HttpServer) -> None:
    bridge = cachewatch.enable_otel_metrics(exporter, set_global=False, scope_labels=True)
    bridge.meter("scoped-lib", "0.1").create_counter("jobs.done").add(1)
    found = samples(http.port)
    assert value(
        found, "jobs_done_total", otel_scope_name="scoped-lib", otel_scope_version="0.1",
        otel_scope_schema_url="",
    ) == 1  # fmt: skip


def test_bridge_stops_with_the_exporter(exporter: Exporter) -> None:
    bridge = cachewatch.enable_otel_metrics(exporter, set_global=False)
    bridge.meter("x").create_counter("late.count").add(1)
    exporter.close()
    names = {family.name for family in exporter.registry.collect()}
    assert "late_count" not in names
