"""Tracing: OTEL_* settings, spans at a real OTLP/gRPC receiver, exemplars, bounded shutdown."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

import cachewatch
from cachewatch import CacheRegistry, telemetry
from cachewatch.server import HttpServer

from .otlp_receiver import OtlpReceiver, ReceivedSpan, otlp_receiver
from .scrape import fetch
from .servers import RedisServer, free_port

OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0; charset=utf-8"}


def otel_env(endpoint: str, **extra: str) -> dict[str, str]:
    env = {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint,
        "OTEL_SERVICE_NAME": "checkout",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    env.update(extra)
    return env


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as running:
        yield running


@pytest.fixture
def tracing(receiver: OtlpReceiver) -> Iterator[telemetry.TracingSettings]:
    """Tracing on, every operation sampled, spans sent to the receiver."""
    state = telemetry.setup_tracing(otel_env(receiver.endpoint), set_global=False)
    assert state is not None
    yield state.settings
    telemetry.shutdown_tracing()


def by_name(spans: list[ReceivedSpan], name: str) -> list[ReceivedSpan]:
    return [span for span in spans if span.name == name]


# --- settings ---------------------------------------------------------------------------------
def test_tracing_is_off_unless_an_exporter_or_endpoint_is_given() -> None:
    assert not telemetry.tracing_settings({}).enabled
    assert not telemetry.tracing_settings({"OTEL_TRACES_EXPORTER": "none"}).enabled
    on = telemetry.tracing_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"})
    assert on.enabled and on.exporters == ("otlp",) and on.endpoint == "http://collector:4317"
    disabled = telemetry.tracing_settings(
        {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}
    )
    assert not disabled.enabled
    default_endpoint = telemetry.tracing_settings({"OTEL_TRACES_EXPORTER": "otlp,console"})
    assert default_endpoint.exporters == ("otlp", "console")
    assert default_endpoint.endpoint == "http://localhost:4317"


def test_traces_endpoint_wins_and_resource_and_service_name_are_read() -> None:
    settings = telemetry.tracing_settings(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://general:4317",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:4317",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,team=a%20b,broken",
            "OTEL_SERVICE_NAME": "checkout",
        }
    )
    assert settings.endpoint == "http://traces:4317"
    assert settings.resource["deployment.environment"] == "prod"
    assert settings.resource["team"] == "a b"
    assert settings.service_name == "checkout"
    assert any("broken" in warning for warning in settings.warnings)
    assert telemetry.tracing_settings({}).service_name == "cachewatch"


@pytest.mark.parametrize(
    ("sampler", "arg", "rule", "ratio"),
    [
        ("", "", "follow", 1.0),
        ("always_on", "", "always", 1.0),
        ("traceidratio", "0.25", "trace_id", 0.25),
        ("parentbased_traceidratio", "0.01", "follow", 0.01),
        ("parentbased_always_off", "", "follow", 0.0),
        ("parentbased_traceidratio", "7", "follow", 1.0),  # invalid: warned, default
        ("jaeger_remote", "", "follow", 1.0),  # unsupported: warned, default
    ],
)
def test_samplers_from_the_environment(sampler: str, arg: str, rule: str, ratio: float) -> None:
    env = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": sampler}
    env["OTEL_TRACES_SAMPLER_ARG"] = arg
    settings = telemetry.tracing_settings(env)
    assert (settings.parent_rule, settings.root_ratio) == (rule, ratio)
    assert bool(settings.warnings) == (arg == "7" or sampler == "jaeger_remote")


def test_always_off_sampler_turns_tracing_off() -> None:
    env = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "always_off"}
    assert not telemetry.tracing_settings(env).enabled


def test_key_recording_is_opt_in() -> None:
    assert not telemetry.tracing_settings({}).record_keys
    assert telemetry.tracing_settings({"CACHEWATCH_TRACING_RECORD_KEYS": "true"}).record_keys
    assert telemetry.tracing_settings({}, record_keys=True).record_keys


# --- not imported when off --------------------------------------------------------------------
def test_tracing_off_imports_neither_the_sdk_nor_grpc() -> None:
    """A whole embedded round (instrumented cache, trace_cache_operation, exporter, scrape)
    in a fresh interpreter with tracing left off: no OpenTelemetry or gRPC module loads."""
    script = textwrap.dedent(
        """
        import json, sys, urllib.request
        import cachewatch
        from cachewatch import telemetry
        from cachewatch.cli import main  # the command line must not pull them in either
        from cachewatch.runner import assemble
        from cachewatch.config import load_config
        import cachewatch.redis_client
        assert telemetry.setup_tracing() is None
        exporter = assemble(load_config("serve", environ={}), cachewatch.embedded_exporter())
        cache = cachewatch.instrument({}, "c")
        cache["a"] = 1
        cache.get("a"); cache.get("b")
        with cachewatch.trace_cache_operation("get", "c", "a") as op:
            op.hit()
        server = cachewatch.start_http_server(0)
        body = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics").read()
        assert b"cache_gets_total" in body
        server.shutdown(); exporter.close()
        loaded = sorted(m for m in sys.modules if m.startswith(("opentelemetry", "grpc", "redis")))
        print(json.dumps(loaded))
        """
    )
    env = {"PATH": "/usr/bin:/bin", "OTEL_SERVICE_NAME": "x"}  # no exporter, no endpoint
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_serve_mode_with_tracing_off_imports_no_opentelemetry(redis: RedisServer) -> None:
    """The standalone exporter watching a real Redis, tracing left off: redis-py is loaded
    (and with it the small OpenTelemetry API), the SDK, the exporters and gRPC are not."""
    script = textwrap.dedent(
        """
        import json, sys
        from cachewatch.app import Exporter
        from cachewatch.config import load_config
        from cachewatch.runner import assemble
        from cachewatch.sources.redis import RedisSettings, RedisSource
        config = load_config("serve", flags={"redis_addr": sys.argv[1]}, environ={})
        exporter = assemble(config, Exporter([RedisSource(RedisSettings.from_config(config))]))
        names = {family.name for family in exporter.registry.collect()}
        assert "redis_up" in names, names
        exporter.close()
        heavy = ("opentelemetry.sdk", "opentelemetry.exporter", "opentelemetry.proto", "grpc")
        print(json.dumps(sorted(m for m in sys.modules if m.startswith(heavy))))
        print("redis" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, redis.url],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    loaded, redis_loaded = done.stdout.strip().splitlines()[-2:]
    assert json.loads(loaded) == [] and redis_loaded == "True"


# --- sampling decisions -----------------------------------------------------------------------
def test_decision_follows_the_parent_and_draws_for_roots(receiver: OtlpReceiver) -> None:
    env = otel_env(
        receiver.endpoint,
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0.0",
    )
    state = telemetry.setup_tracing(env, set_global=False)
    assert state is not None
    try:
        assert telemetry.TRACING
        assert not any(telemetry.sample() for _ in range(1000))  # roots at ratio 0
        from opentelemetry import trace
        from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

        sampled = SpanContext(0x1234, 0x99, is_remote=True, trace_flags=TraceFlags(1))
        with trace.use_span(NonRecordingSpan(sampled)):
            assert all(telemetry.sample() for _ in range(100))
        unsampled = SpanContext(0x1234, 0x99, is_remote=True, trace_flags=TraceFlags(0))
        with trace.use_span(NonRecordingSpan(unsampled)):
            assert not any(telemetry.sample() for _ in range(100))
    finally:
        telemetry.shutdown_tracing()
    assert not telemetry.TRACING and not telemetry.sample()


def test_ratio_sampling_records_about_the_ratio(receiver: OtlpReceiver) -> None:
    env = otel_env(
        receiver.endpoint,
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0.1",
    )
    assert telemetry.setup_tracing(env, set_global=False) is not None
    try:
        drawn = sum(telemetry.sample() for _ in range(20_000))
    finally:
        telemetry.shutdown_tracing()
    assert 1500 < drawn < 2500


# --- spans at the receiver --------------------------------------------------------------------
def test_mapping_operations_arrive_as_spans_with_attributes(
    tracing: telemetry.TracingSettings, receiver: OtlpReceiver, cache_registry: CacheRegistry
) -> None:
    cache = cachewatch.instrument({}, "embedding_cache", registry=cache_registry)
    cache["k"] = "v"
    assert cache.get("k") == "v"
    assert cache.get("absent") is None
    with pytest.raises(KeyError):
        cache["absent"]
    del cache["k"]
    spans = receiver.wait_for(lambda s: len(by_name(s, "get embedding_cache")) >= 3)
    gets = by_name(spans, "get embedding_cache")
    assert sorted(span.attributes["cachewatch.cache.hit"] for span in gets) == [False, False, True]
    for span in gets:
        assert span.attributes["cachewatch.cache.name"] == "embedding_cache"
        assert span.attributes["cachewatch.cache.operation"] == "get"
        assert span.resource["service.name"] == "checkout"
        assert "cachewatch.cache.key.hash" not in span.attributes  # not opted in
    spans = receiver.wait_for_names("put embedding_cache", "remove embedding_cache")
    assert by_name(spans, "put embedding_cache")[0].attributes["cachewatch.cache.operation"] == (
        "put"
    )
    snapshot = cache_registry.recorder("embedding_cache").snapshot()
    assert (snapshot.hits, snapshot.misses, snapshot.puts, snapshot.removals) == (1, 2, 1, 1)


def test_operation_spans_nest_under_the_callers_span_and_join_its_trace(
    tracing: telemetry.TracingSettings, receiver: OtlpReceiver, cache_registry: CacheRegistry
) -> None:
    state = telemetry.active()
    assert state is not None
    app_tracer = state.provider.get_tracer("checkout-app")
    cache = cachewatch.instrument({"k": 1}, "search_cache", registry=cache_registry)
    operation = cachewatch.trace_cache_operation(
        "get", "search_cache", "k", registry=cache_registry
    )
    with app_tracer.start_as_current_span("handle request") as request, operation as op:
        op.result(cache.get("k"))
    spans = receiver.wait_for_names("handle request", "get search_cache")
    root = by_name(spans, "handle request")[0]
    operation = [s for s in by_name(spans, "get search_cache") if s.parent_span_id == root.span_id]
    assert len(operation) == 1
    inner = [
        s for s in by_name(spans, "get search_cache") if s.parent_span_id == operation[0].span_id
    ]
    assert len(inner) == 1  # the wrapped cache's own get is a child of the operation
    assert {root.trace_id, operation[0].trace_id, inner[0].trace_id} == {
        format(request.get_span_context().trace_id, "032x")
    }


def test_exceptions_are_recorded_with_error_status(
    tracing: telemetry.TracingSettings, receiver: OtlpReceiver, cache_registry: CacheRegistry
) -> None:
    with pytest.raises(ConnectionError):  # noqa: SIM117
        with cachewatch.trace_cache_operation("get", "flaky", registry=cache_registry):
            raise ConnectionError("backend down")
    span = receiver.wait_for_names("get flaky")[0]
    failed = by_name(receiver.received(), "get flaky")[0]
    assert failed.status_code == 2  # STATUS_CODE_ERROR
    assert failed.attributes["error.type"] == "ConnectionError"
    assert [name for name, _ in failed.events] == ["exception"]
    assert span.events[0][1]["exception.type"] == "ConnectionError"
    errors = cache_registry.recorder("flaky").snapshot().errors
    assert errors == {("get", "ConnectionError"): 1}


def test_keys_are_recorded_only_hashed_and_only_when_opted_in(
    receiver: OtlpReceiver, cache_registry: CacheRegistry
) -> None:
    env = otel_env(receiver.endpoint, CACHEWATCH_TRACING_RECORD_KEYS="true")
    assert telemetry.setup_tracing(env, set_global=False) is not None
    try:
        cache = cachewatch.instrument({}, "users", registry=cache_registry)
        cache.get("user:alice@example.com")
        span = receiver.wait_for_names("get users")[0]
    finally:
        telemetry.shutdown_tracing()
    hashed = span.attributes["cachewatch.cache.key.hash"]
    assert hashed == telemetry.key_hash("user:alice@example.com")
    assert len(hashed) == 16 and "alice" not in json.dumps(span.attributes)


def test_exporter_polls_are_spans(
    tracing: telemetry.TracingSettings, receiver: OtlpReceiver, http: HttpServer
) -> None:
    fetch(http.port)
    span = receiver.wait_for_names("poll local")[0]
    assert span.attributes["cachewatch.source.name"] == "local"
    assert span.attributes["cachewatch.source.up"] is True


# --- exemplars --------------------------------------------------------------------------------
def test_exemplars_in_openmetrics_carry_trace_ids_that_reached_the_receiver(
    tracing: telemetry.TracingSettings,
    receiver: OtlpReceiver,
    cache_registry: CacheRegistry,
    http: HttpServer,
) -> None:
    cache = cachewatch.instrument({"k": 1}, "embedding_cache", registry=cache_registry)
    for _ in range(20):
        cache.get("k")
    with cachewatch.trace_cache_operation("lookup", "embedding_cache", registry=cache_registry):
        time.sleep(0.002)
    text = fetch(http.port, headers=OPENMETRICS)
    exemplars: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "cachewatch_cache_operation_duration_seconds":
            continue
        for sample in family.samples:
            if sample.exemplar is not None:
                operation = sample.labels["operation"]
                exemplars.setdefault(operation, set()).add(sample.exemplar.labels["trace_id"])
    assert set(exemplars) == {"get", "lookup"}
    wanted = set().union(*exemplars.values())
    spans = receiver.wait_for(lambda s: wanted <= {span.trace_id for span in s})
    assert all(len(trace_id) == 32 for trace_id in wanted)
    assert wanted <= {span.trace_id for span in spans if span.name.endswith("embedding_cache")}


def test_unsampled_operations_carry_no_exemplar(
    receiver: OtlpReceiver, cache_registry: CacheRegistry
) -> None:
    env = otel_env(receiver.endpoint, OTEL_TRACES_SAMPLER="parentbased_always_off")
    assert telemetry.setup_tracing(env, set_global=False) is not None
    try:
        cache = cachewatch.instrument({"k": 1}, "quiet", registry=cache_registry)
        for _ in range(200):
            cache.get("k")
        with cachewatch.trace_cache_operation("get", "quiet", registry=cache_registry) as op:
            op.hit()
            assert op.trace_id is None
    finally:
        telemetry.shutdown_tracing()
    histogram = cache_registry.recorder("quiet").snapshot().latency["get"]
    assert histogram.count > 0 and histogram.exemplars == {}
    assert receiver.received() == []


# --- a dead collector -------------------------------------------------------------------------
def test_dead_endpoint_never_blocks_operations_and_shutdown_is_bounded(
    cache_registry: CacheRegistry,
) -> None:
    cache = cachewatch.instrument({"k": 1}, "hot", registry=cache_registry)

    def median_get_seconds() -> float:
        rounds = []
        for _ in range(15):
            start = time.perf_counter()
            for _ in range(200):
                cache.get("k")
            rounds.append((time.perf_counter() - start) / 200)
        return sorted(rounds)[len(rounds) // 2]

    dead = f"http://127.0.0.1:{free_port()}"
    env = otel_env(dead, OTEL_BSP_SCHEDULE_DELAY="50", OTEL_BSP_MAX_EXPORT_BATCH_SIZE="64")
    assert telemetry.setup_tracing(env, set_global=False) is not None
    try:
        warm = median_get_seconds()  # every get is a span; export fails in the background
        time.sleep(1.0)  # the exporter is now retrying with backoff
        later = median_get_seconds()
    finally:
        start = time.monotonic()
        telemetry.shutdown_tracing()
        took = time.monotonic() - start
    assert took <= 2.1
    assert later < max(warm * 3, warm + 50e-6)  # within noise: no blocking on the dead peer
    assert cache_registry.recorder("hot").snapshot().hits == 15 * 200 * 2


def test_shutdown_of_an_idle_tracer_is_quick(receiver: OtlpReceiver) -> None:
    assert telemetry.setup_tracing(otel_env(receiver.endpoint), set_global=False) is not None
    start = time.monotonic()
    telemetry.shutdown_tracing()
    assert time.monotonic() - start < 1.0
    telemetry.shutdown_tracing()  # twice is fine
