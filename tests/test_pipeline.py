"""cachewatch's own trace pipeline: OTEL_TRACES_EXPORTER=zipkin to a real Zipkin v2 JSON
receiver (alone and next to OTLP), its settings, and a dead Zipkin collector."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

import cachewatch
from cachewatch import CacheRegistry
from cachewatch.tracing import settings as tracing_settings
from cachewatch.tracing import spans as tracing_state

from .otlp_receiver import otlp_receiver
from .servers import free_port
from .zipkin_receiver import ZipkinReceiver, zipkin_receiver


@pytest.fixture(scope="module")
def zipkin() -> Iterator[ZipkinReceiver]:
    with zipkin_receiver() as running:
        yield running


def zipkin_env(endpoint: str, **extra: str) -> dict[str, str]:
    env = {
        "OTEL_TRACES_EXPORTER": "zipkin",
        "OTEL_EXPORTER_ZIPKIN_ENDPOINT": endpoint,
        "OTEL_SERVICE_NAME": "catalog",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    env.update(extra)
    return env


def test_zipkin_settings() -> None:
    settings = tracing_settings.tracing_settings({"OTEL_TRACES_EXPORTER": "zipkin"})
    assert settings.enabled and settings.exporters == ("zipkin",) and not settings.warnings
    assert settings.zipkin_endpoint == "http://localhost:9411/api/v2/spans"
    custom = tracing_settings.tracing_settings(
        {"OTEL_TRACES_EXPORTER": "zipkin,otlp", "OTEL_EXPORTER_ZIPKIN_ENDPOINT": "http://z:9411/x",
         "OTEL_EXPORTER_ZIPKIN_TIMEOUT": "2500"}
    )  # fmt: skip
    assert custom.exporters == ("zipkin", "otlp") and custom.zipkin_endpoint == "http://z:9411/x"
    assert custom.zipkin_timeout_seconds == 2.5  # milliseconds, as the spec gives them


def test_spans_arrive_as_zipkin_v2_json(zipkin: ZipkinReceiver, cache_table: CacheRegistry) -> None:
    state = tracing_state.setup_tracing(zipkin_env(zipkin.endpoint), set_global=False)
    assert state is not None and state.owns_pipeline
    try:
        local = cachewatch.instrument({"a": 1}, "catalog_cache", registry=cache_table)
        with cachewatch.trace_cache_operation("get", "catalog_cache", registry=cache_table) as op:
            op.result(local.get("a"))
        with cachewatch.trace_cache_operation("get", "catalog_cache", registry=cache_table) as op:
            op.result(local.get("b"))
            trace_ids = {op.trace_id}
        spans = zipkin.wait_for(lambda s: len([x for x in s if x.service_name == "catalog"]) >= 4)
    finally:
        tracing_state.shutdown_tracing()
    mine = [s for s in spans if s.service_name == "catalog"]
    operations = [s for s in mine if s.parent_id is None]
    assert sorted(s.tags["cachewatch.cache.hit"] for s in operations) == ["false", "true"]
    assert trace_ids <= {s.trace_id for s in operations}  # the exemplar's trace id
    for operation in operations:
        assert operation.name == "get catalog_cache" and operation.kind is None  # internal
        assert len(operation.trace_id) == 32 and operation.tags["cachewatch.cache.name"] == (
            "catalog_cache"
        )
        (inner,) = [s for s in mine if s.parent_id == operation.id]
        assert inner.trace_id == operation.trace_id
        assert operation.timestamp_us <= inner.timestamp_us
        assert inner.timestamp_us + inner.duration_us <= (
            operation.timestamp_us + operation.duration_us + 1
        )
    now_us = time.time() * 1e6
    assert all(now_us - 60e6 < s.timestamp_us <= now_us for s in mine)  # microseconds


def test_zipkin_and_otlp_together(zipkin: ZipkinReceiver, cache_table: CacheRegistry) -> None:
    with otlp_receiver() as otlp:
        env = zipkin_env(
            zipkin.endpoint, OTEL_TRACES_EXPORTER="zipkin,otlp",
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=otlp.endpoint, OTEL_SERVICE_NAME="both",
        )  # fmt: skip
        assert tracing_state.setup_tracing(env, set_global=False) is not None
        try:
            with cachewatch.trace_cache_operation("get", "both_cache", registry=cache_table) as op:
                op.hit()
                trace_id = op.trace_id
            got = otlp.wait_for(lambda s: any(x.trace_id == trace_id for x in s))
            zipkin.wait_for(lambda s: any(x.trace_id == trace_id for x in s))
        finally:
            tracing_state.shutdown_tracing()
    assert next(s for s in got if s.trace_id == trace_id).resource["service.name"] == "both"


def test_a_dead_zipkin_collector_stops_in_bounded_time(cache_table: CacheRegistry) -> None:
    dead = f"http://127.0.0.1:{free_port()}/api/v2/spans"
    assert tracing_state.setup_tracing(zipkin_env(dead), set_global=False) is not None
    try:
        cache = cachewatch.instrument({"k": 1}, "hot", registry=cache_table)
        for _ in range(500):
            cache.get("k")
        time.sleep(0.3)  # a few failed exports
    finally:
        start = time.monotonic()
        tracing_state.shutdown_tracing()
        took = time.monotonic() - start
    assert took <= 2.1
    assert cache_table.recorder("hot").snapshot().hits == 500


def test_otlp_spans_go_out_wire_encoded_and_through_the_library_when_that_fails(
    cache_table: CacheRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cachewatch.tracing import pipeline

    env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "", "OTEL_BSP_SCHEDULE_DELAY": "50"}
    local = cachewatch.instrument({"a": 1}, "wire_cache", registry=cache_table)
    failures: list[int] = []
    wire = pipeline.encode_request

    def failing(spans: object) -> bytes:
        failures.append(1)
        raise ValueError("not this batch")

    for encoder in (wire, failing):
        monkeypatch.setattr(pipeline, "encode_request", encoder)
        with otlp_receiver() as receiver:
            env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = receiver.endpoint
            state = tracing_state.setup_tracing(env, set_global=False)
            assert state is not None and state.pipeline is not None
            exporters = state.pipeline.exporters  # type: ignore[attr-defined]
            assert [type(e).__name__ for e in exporters] == ["WireOTLPSpanExporter"]
            try:
                with cachewatch.trace_cache_operation("get", "wire_cache", registry=cache_table):
                    local.get("a")
                    local.get("b")
            finally:
                tracing_state.shutdown_tracing()
            spans = receiver.wait_for(lambda s: len(s) >= 3)
        lookups = sorted(
            s.attributes["cachewatch.cache.hit"]
            for s in spans
            if s.name == "get wire_cache" and "cachewatch.cache.hit" in s.attributes
        )
        assert lookups == [False, True]
        assert {s.resource.get("service.name") for s in spans} != {None}
    assert failures  # the second tracer's batches did take the fallback
