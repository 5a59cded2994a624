"""Joining the application's tracer provider: cachewatch's spans carry the application's
resource and parent and go through its one pipeline, at a real OTLP/gRPC receiver; the
decision mirrors the application's sampler; ``opentelemetry-instrument`` end to end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)

import cachewatch
from cachewatch import CacheRegistry
from cachewatch.tracing import spans as tracing_state
from cachewatch.tracing.application import mirrored_rule

from .otlp_receiver import OtlpReceiver, ReceivedSpan, otlp_receiver

APP_RESOURCE = {"service.name": "shop", "deployment.environment": "test", "team": "search"}


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as running:
        yield running


def app_provider(endpoint: str, sampler: Sampler | None = None) -> TracerProvider:
    """An application's own OpenTelemetry set-up, as a framework integration makes it."""
    provider = TracerProvider(
        resource=Resource.create(APP_RESOURCE), sampler=sampler or DEFAULT_ON,
        shutdown_on_exit=False,
    )  # fmt: skip
    exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=100))
    return provider


def batch_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("OtelBatchSpan"))


def traced(spans: list[ReceivedSpan], trace_id: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.trace_id == trace_id]


def test_spans_go_through_the_applications_provider_with_its_resource_and_parent(
    receiver: OtlpReceiver, cache_table: CacheRegistry
) -> None:
    provider = app_provider(receiver.endpoint)
    processors = list(provider._active_span_processor._span_processors)
    threads = batch_threads()
    state = tracing_state.setup_tracing({}, tracer_provider=provider)
    try:
        assert state is not None and not state.owns_pipeline and state.provider is provider
        assert list(provider._active_span_processor._span_processors) == processors
        assert batch_threads() == threads  # no second batch processor
        cache = cachewatch.instrument({"a": 1}, "local_cache", registry=cache_table)
        app = provider.get_tracer("shop.web")
        with app.start_as_current_span("GET /search") as request:
            cache.get("a")
            with cachewatch.trace_cache_operation(
                "get", "search_cache", registry=cache_table
            ) as op:
                op.miss()
        trace_id = format(request.get_span_context().trace_id, "032x")
        spans = receiver.wait_for(lambda s: len(traced(s, trace_id)) >= 3)
    finally:
        tracing_state.shutdown_tracing()
    mine = {s.name: s for s in traced(spans, trace_id)}
    root = mine["GET /search"]
    for name in ("get local_cache", "get search_cache"):
        assert mine[name].parent_span_id == root.span_id
        assert mine[name].resource == root.resource  # the application's, exactly
        assert mine[name].scope == "cachewatch"
    assert {k: root.resource[k] for k in APP_RESOURCE} == APP_RESOURCE
    assert "service.version" not in root.resource  # nothing of cachewatch's own resource
    assert mine["get search_cache"].attributes["cachewatch.cache.hit"] is False
    # cachewatch stopped; the application's provider was not shut down with it
    with provider.get_tracer("shop.web").start_as_current_span("after") as after:
        pass
    after_id = format(after.get_span_context().trace_id, "032x")
    receiver.wait_for(lambda s: bool(traced(s, after_id)))
    provider.shutdown()


def test_root_operations_are_sampled_at_the_applications_ratio_once(
    receiver: OtlpReceiver, cache_table: CacheRegistry
) -> None:
    """A root drawn by cachewatch is not drawn a second time by the application's ratio
    sampler: half, not a quarter, of the roots are recorded."""
    provider = app_provider(receiver.endpoint, ParentBased(TraceIdRatioBased(0.5)))
    state = tracing_state.setup_tracing({}, tracer_provider=provider)
    try:
        assert state is not None
        assert (state.settings.parent_rule, state.settings.root_ratio) == ("follow", 0.5)
        recorded = 0
        for _ in range(2000):
            with cachewatch.trace_cache_operation("get", "ratio", registry=cache_table) as op:
                op.hit()
                recorded += op.trace_id is not None
    finally:
        tracing_state.shutdown_tracing()
        provider.shutdown()
    assert 850 < recorded < 1150


def test_a_sampler_cachewatch_cannot_mirror_is_asked_for_every_operation(
    receiver: OtlpReceiver, cache_table: CacheRegistry
) -> None:
    class OnlySearch(Sampler):
        """Records the spans of search_cache only."""

        def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None,
                          links=None, trace_state=None) -> SamplingResult:  # type: ignore[no-untyped-def]  # fmt: skip
            decision = Decision.RECORD_AND_SAMPLE if "search" in name else Decision.DROP
            return SamplingResult(decision, attributes)

        def get_description(self) -> str:
            return "OnlySearch"

    provider = app_provider(receiver.endpoint, OnlySearch())
    state = tracing_state.setup_tracing({}, tracer_provider=provider)
    try:
        assert state is not None and state.settings.parent_rule == "delegate"
        ids = {}
        for cache in ("search_cache", "other_cache"):
            with cachewatch.trace_cache_operation("get", cache, registry=cache_table) as op:
                op.hit()
                ids[cache] = op.trace_id
    finally:
        tracing_state.shutdown_tracing()
    assert ids["other_cache"] is None  # declined by the sampler: no exemplar id either
    assert ids["search_cache"] is not None
    receiver.wait_for(lambda s: any(x.trace_id == ids["search_cache"] for x in s))
    provider.shutdown()
    histogram = cache_table.recorder("other_cache").snapshot().latency["get"]
    assert histogram.count == 1 and histogram.exemplars == {}


@pytest.mark.parametrize(
    ("sampler", "rule"),
    [
        (ALWAYS_ON, ("always", 1.0)),
        (ALWAYS_OFF, ("never", 0.0)),
        (TraceIdRatioBased(0.25), ("trace_id", 0.25)),
        (DEFAULT_ON, ("follow", 1.0)),
        (ParentBased(ALWAYS_OFF), ("follow", 0.0)),
        (ParentBased(TraceIdRatioBased(0.1)), ("follow", 0.1)),
        (ParentBased(ALWAYS_ON, remote_parent_not_sampled=ALWAYS_ON), None),  # unusual
    ],
)
def test_the_decision_mirrors_the_applications_sampler(
    sampler: Sampler, rule: tuple[str, float] | None
) -> None:
    assert mirrored_rule(sampler) == rule


# --- a fresh process: the global provider, opentelemetry-instrument ---------------------------
APP = textwrap.dedent(
    """
    import json, sys, threading
    from opentelemetry import trace
    import cachewatch
    from cachewatch.tracing import spans

    if sys.argv[1] == "framework":  # the application sets up OpenTelemetry in code
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(insecure=True)))
        trace.set_tracer_provider(provider)
    provider = trace.get_tracer_provider()
    processors = len(provider._active_span_processor._span_processors)
    state = spans.setup_tracing()  # reads OTEL_*, as embedded_exporter() does
    cache = cachewatch.instrument({}, "search_cache")
    with trace.get_tracer("shop").start_as_current_span("GET /search") as request:
        cache.get("q")
    provider.force_flush()
    print(json.dumps({
        "owns_pipeline": state.owns_pipeline,
        "same_provider": state.provider is trace.get_tracer_provider(),
        "processors_added": len(provider._active_span_processor._span_processors) - processors,
        "batch_threads": sum(t.name.startswith("OtelBatchSpan") for t in threading.enumerate()),
        "trace_id": format(request.get_span_context().trace_id, "032x"),
    }))
    """
)


def run_app(mode: str, receiver: OtlpReceiver, tmp_path: Path) -> dict[str, object]:
    script = tmp_path / "app.py"
    script.write_text(APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CACHEWATCH_"))}
    env.update(
        OTEL_TRACES_EXPORTER="otlp", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_SERVICE_NAME="shop", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
        OTEL_BSP_SCHEDULE_DELAY="100",
    )  # fmt: skip
    argv = [sys.executable, str(script), mode]
    if mode == "opentelemetry-instrument":
        launcher = shutil.which("opentelemetry-instrument", path=str(Path(sys.executable).parent))
        assert launcher is not None, "opentelemetry-distro is in the test extra"
        argv = [launcher, *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("mode", ["framework", "opentelemetry-instrument"])
def test_a_global_sdk_provider_is_joined(mode: str, receiver: OtlpReceiver, tmp_path: Path) -> None:
    result = run_app(mode, receiver, tmp_path)
    assert result["owns_pipeline"] is False and result["same_provider"] is True
    assert result["processors_added"] == 0 and result["batch_threads"] == 1
    trace_id = result["trace_id"]
    spans = receiver.wait_for(lambda s: len([x for x in s if x.trace_id == trace_id]) >= 2)
    mine = {s.name: s for s in spans if s.trace_id == trace_id}
    request, lookup = mine["GET /search"], mine["get search_cache"]
    assert lookup.parent_span_id == request.span_id
    assert lookup.resource == request.resource and request.resource["service.name"] == "shop"
    if mode == "opentelemetry-instrument":
        assert "telemetry.auto.version" in request.resource  # the distro's own resource
