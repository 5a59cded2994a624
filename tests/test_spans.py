"""Tracing: OTEL_* settings, spans at a real OTLP/gRPC receiver, exemplars, bounded shutdown."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

import cachewatch
from cachewatch import CacheRegistry
from cachewatch.tracing import settings as tracing_settings
from cachewatch.tracing import spans as tracing_state
from cachewatch.web.server import HttpServer

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
def tracing(receiver: OtlpReceiver) -> Iterator[tracing_settings.TracingSettings]:
    """Tracing on, every operation sampled, spans sent to the receiver."""
    state = tracing_state.setup_tracing(otel_env(receiver.endpoint), set_global=False)
    assert state is not None
    yield state.settings
    tracing_state.shutdown_tracing()


def by_name(spans: list[ReceivedSpan], name: str) -> list[ReceivedSpan]:
    return [span for span in spans if span.name == name]


# --- settings ---------------------------------------------------------------------------------


# --- not imported when off --------------------------------------------------------------------
def test_tracing_off_imports_neither_the_sdk_nor_grpc() -> None:
    """A whole embedded round (instrumented cache, trace_cache_operation, exporter, scrape)
    in a fresh interpreter with tracing left off: no OpenTelemetry or gRPC module loads."""
    script = textwrap.dedent(
        """
        import json, sys, urllib.request
        import cachewatch
        from cachewatch.tracing import spans as tracing_state
        from cachewatch.cli import main  # the command line must not pull them in either
        import cachewatch.instrument.redis_py
        assert tracing_state.setup_tracing() is None
        exporter = cachewatch.embedded_exporter()
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
    """The standalone exporter watching a real Redis, tracing left off: no OpenTelemetry
    module, no gRPC, and no redis-py (which would bring the OpenTelemetry API with it)."""
    script = textwrap.dedent(
        """
        import json, sys
        from cachewatch.config import load_config
        from cachewatch.exporter import serve_exporter
        config = load_config("serve", flags={"redis_addr": sys.argv[1]}, environ={})
        exporter = serve_exporter(config)
        names = {family.name for family in exporter.registry.collect()}
        assert "redis_up" in names, names
        up = [s.value for f in exporter.registry.collect() for s in f.samples
              if s.name == "redis_up"]
        assert up == [1.0], up
        exporter.close()
        heavy = ("opentelemetry", "grpc", "redis")
        print(json.dumps(sorted(m for m in sys.modules if m.partition(".")[0] in heavy)))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, redis.url],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


# --- sampling decisions -----------------------------------------------------------------------
def test_decision_follows_the_parent_and_draws_for_roots(receiver: OtlpReceiver) -> None:
    env = otel_env(
        receiver.endpoint,
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0.0",
    )
    state = tracing_state.setup_tracing(env, set_global=False)
    assert state is not None
    try:
        assert tracing_state.TRACING
        assert not any(tracing_state.sample() for _ in range(1000))  # roots at ratio 0
        from opentelemetry import trace
        from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

        sampled = SpanContext(0x1234, 0x99, is_remote=True, trace_flags=TraceFlags(1))
        with trace.use_span(NonRecordingSpan(sampled)):
            assert all(tracing_state.sample() for _ in range(100))
        unsampled = SpanContext(0x1234, 0x99, is_remote=True, trace_flags=TraceFlags(0))
        with trace.use_span(NonRecordingSpan(unsampled)):
            assert not any(tracing_state.sample() for _ in range(100))
    finally:
        tracing_state.shutdown_tracing()
    assert not tracing_state.TRACING and not tracing_state.sample()


def test_ratio_sampling_records_about_the_ratio(receiver: OtlpReceiver) -> None:
    env = otel_env(
        receiver.endpoint,
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0.1",
    )
    assert tracing_state.setup_tracing(env, set_global=False) is not None
    try:
        drawn = sum(tracing_state.sample() for _ in range(20_000))
    finally:
        tracing_state.shutdown_tracing()
    assert 1500 < drawn < 2500


def test_root_gaps_are_geometric_at_the_ratio() -> None:
    from cachewatch.tracing.sdk import make_root_gaps

    settings = tracing_settings.tracing_settings(
        {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}
    )
    gap = make_root_gaps(settings)
    gaps = [gap() for _ in range(40_000)]
    assert min(gaps) == 1
    assert 3.9 < sum(gaps) / len(gaps) < 4.1  # 1 / ratio
    assert 0.24 < gaps.count(1) / len(gaps) < 0.26  # the next root is recorded at the ratio
    assert 0.1775 < gaps.count(2) / len(gaps) < 0.1975  # 0.75 * 0.25

    def gaps_of(sampler: str, arg: str = "") -> set[int]:
        env = {"OTEL_TRACES_SAMPLER": sampler, "OTEL_TRACES_SAMPLER_ARG": arg}
        of = make_root_gaps(tracing_settings.tracing_settings(env))
        return {of() for _ in range(100)}

    assert gaps_of("parentbased_always_off") == {0}  # never
    assert gaps_of("parentbased_traceidratio", "0") == {0}
    assert gaps_of("parentbased_always_on") == {1}
    assert gaps_of("always_on") == {1}


def test_root_lookups_are_recorded_at_the_ratio_and_children_follow_their_parent(
    receiver: OtlpReceiver, cache_table: CacheRegistry
) -> None:
    env = otel_env(
        receiver.endpoint,
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0.1",
    )
    assert tracing_state.setup_tracing(env, set_global=False) is not None
    try:
        cache = cachewatch.instrument({"k": 1}, "ratio_cache", registry=cache_table)
        for _ in range(10_000):
            cache.get("k")
        for _ in range(10_000):
            cache["k"]
        recorded = cache_table.recorder("ratio_cache").snapshot().latency["get"].count
        assert 1500 < recorded < 2500  # only recorded lookups are timed

        from opentelemetry import trace
        from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

        sampled = SpanContext(0x1234, 0x99, is_remote=True, trace_flags=TraceFlags(1))
        with trace.use_span(NonRecordingSpan(sampled)):
            for _ in range(100):
                cache.get("k")
        after = cache_table.recorder("ratio_cache").snapshot().latency["get"].count
        assert after == recorded + 100
        unsampled = SpanContext(0x1234, 0x99, is_remote=True, trace_flags=TraceFlags(0))
        with trace.use_span(NonRecordingSpan(unsampled)):
            for _ in range(1000):
                cache.get("k")
        assert cache_table.recorder("ratio_cache").snapshot().latency["get"].count == after
    finally:
        tracing_state.shutdown_tracing()
    snapshot = cache_table.recorder("ratio_cache").snapshot()
    assert snapshot.hits == 21_100
    assert all(len(e.trace_id) == 32 for e in snapshot.latency["get"].exemplars.values())


def test_a_lookup_that_finds_the_countdown_run_out_draws_its_own(
    receiver: OtlpReceiver, cache_table: CacheRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another thread drew the True and has not drawn the next countdown yet (it may be
    preempted for a whole switch interval): the lookups meanwhile are trials of their own."""
    from cachewatch.instrument import mapping

    env = otel_env(
        receiver.endpoint,
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0.01",
    )
    assert tracing_state.setup_tracing(env, set_global=False) is not None
    try:
        cache = cachewatch.instrument({"k": 1}, "run_out_cache", registry=cache_table)
        gaps = iter([3, 1, 0])
        monkeypatch.setattr(mapping, "_next_gap", lambda: next(gaps))

        def recorded() -> int:
            return cache_table.recorder("run_out_cache").snapshot().latency["get"].count

        monkeypatch.setattr(mapping, "_turns", iter(()))  # run out
        cache.get("k")  # draws 3: the third lookup from here is recorded
        cache["k"]
        assert recorded() == 0
        cache.get("k")  # recorded; draws the next countdown: 1
        assert recorded() == 1
        cache.get("k")  # recorded; the next countdown: 0, never again
        assert recorded() == 2
        for _ in range(100):
            cache.get("k")
        assert recorded() == 2
    finally:
        tracing_state.shutdown_tracing()


def test_traced_lookups_count_exactly_under_eight_threads(
    receiver: OtlpReceiver, cache_table: CacheRegistry
) -> None:
    env = otel_env(
        receiver.endpoint,
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0.01",
    )
    assert tracing_state.setup_tracing(env, set_global=False) is not None
    cache = cachewatch.instrument({f"k{i}": i for i in range(100)}, "busy", registry=cache_table)
    per_thread = 20_000
    start = threading.Barrier(8)

    def hammer() -> None:
        start.wait()
        for i in range(per_thread):
            cache.get(f"k{i % 200}")  # half of the keys miss

    try:
        threads = [threading.Thread(target=hammer) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        tracing_state.shutdown_tracing()
    snapshot = cache_table.recorder("busy").snapshot()
    assert snapshot.hits == snapshot.misses == 8 * per_thread // 2
    assert 1200 < snapshot.latency["get"].count < 2000  # 1% of the lookups, recorded once


# --- spans at the receiver --------------------------------------------------------------------
def test_mapping_operations_arrive_as_spans_with_attributes(
    tracing: tracing_settings.TracingSettings, receiver: OtlpReceiver, cache_table: CacheRegistry
) -> None:
    cache = cachewatch.instrument({}, "embedding_cache", registry=cache_table)
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
    snapshot = cache_table.recorder("embedding_cache").snapshot()
    assert (snapshot.hits, snapshot.misses, snapshot.puts, snapshot.removals) == (1, 2, 1, 1)


def test_operation_spans_nest_under_the_callers_span_and_join_its_trace(
    tracing: tracing_settings.TracingSettings, receiver: OtlpReceiver, cache_table: CacheRegistry
) -> None:
    state = tracing_state.active()
    assert state is not None
    app_tracer = state.provider.get_tracer("checkout-app")
    cache = cachewatch.instrument({"k": 1}, "search_cache", registry=cache_table)
    operation = cachewatch.trace_cache_operation("get", "search_cache", "k", registry=cache_table)
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
    tracing: tracing_settings.TracingSettings, receiver: OtlpReceiver, cache_table: CacheRegistry
) -> None:
    with pytest.raises(ConnectionError):  # noqa: SIM117
        with cachewatch.trace_cache_operation("get", "flaky", registry=cache_table):
            raise ConnectionError("backend down")
    span = receiver.wait_for_names("get flaky")[0]
    failed = by_name(receiver.received(), "get flaky")[0]
    assert failed.status_code == 2  # STATUS_CODE_ERROR
    assert failed.attributes["error.type"] == "ConnectionError"
    assert [name for name, _ in failed.events] == ["exception"]
    assert span.events[0][1]["exception.type"] == "ConnectionError"
    errors = cache_table.recorder("flaky").snapshot().errors
    assert errors == {("get", "ConnectionError"): 1}


def test_keys_are_recorded_only_hashed_and_only_when_opted_in(
    receiver: OtlpReceiver, cache_table: CacheRegistry
) -> None:
    env = otel_env(receiver.endpoint, CACHEWATCH_TRACING_RECORD_KEYS="true")
    assert tracing_state.setup_tracing(env, set_global=False) is not None
    try:
        cache = cachewatch.instrument({}, "users", registry=cache_table)
        cache.get("user:alice@example.com")
        span = receiver.wait_for_names("get users")[0]
    finally:
        tracing_state.shutdown_tracing()
    hashed = span.attributes["cachewatch.cache.key.hash"]
    assert hashed == tracing_state.key_hash("user:alice@example.com")
    assert len(hashed) == 16 and "alice" not in json.dumps(span.attributes)


def test_exporter_polls_are_spans(
    tracing: tracing_settings.TracingSettings, receiver: OtlpReceiver, http: HttpServer
) -> None:
    fetch(http.port)
    span = receiver.wait_for_names("poll local")[0]
    assert span.attributes["cachewatch.source.name"] == "local"
    assert span.attributes["cachewatch.source.up"] is True


# --- exemplars --------------------------------------------------------------------------------
def test_exemplars_in_openmetrics_carry_trace_ids_that_reached_the_receiver(
    tracing: tracing_settings.TracingSettings,
    receiver: OtlpReceiver,
    cache_table: CacheRegistry,
    http: HttpServer,
) -> None:
    cache = cachewatch.instrument({"k": 1}, "embedding_cache", registry=cache_table)
    for _ in range(20):
        cache.get("k")
    with cachewatch.trace_cache_operation("lookup", "embedding_cache", registry=cache_table):
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
    receiver: OtlpReceiver, cache_table: CacheRegistry
) -> None:
    env = otel_env(receiver.endpoint, OTEL_TRACES_SAMPLER="parentbased_always_off")
    assert tracing_state.setup_tracing(env, set_global=False) is not None
    try:
        cache = cachewatch.instrument({"k": 1}, "quiet", registry=cache_table)
        for _ in range(200):
            cache.get("k")
        with cachewatch.trace_cache_operation("get", "quiet", registry=cache_table) as op:
            op.hit()
            assert op.trace_id is None
    finally:
        tracing_state.shutdown_tracing()
    histogram = cache_table.recorder("quiet").snapshot().latency["get"]
    assert histogram.count > 0 and histogram.exemplars == {}
    assert receiver.received() == []


# --- a dead collector -------------------------------------------------------------------------
def test_dead_endpoint_never_blocks_operations_and_shutdown_is_bounded(
    cache_table: CacheRegistry,
) -> None:
    cache = cachewatch.instrument({"k": 1}, "hot", registry=cache_table)

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
    assert tracing_state.setup_tracing(env, set_global=False) is not None
    try:
        warm = median_get_seconds()  # every get is a span; export fails in the background
        time.sleep(1.0)  # the exporter is now retrying with backoff
        later = median_get_seconds()
    finally:
        start = time.monotonic()
        tracing_state.shutdown_tracing()
        took = time.monotonic() - start
    assert took <= 2.1
    assert later < max(warm * 3, warm + 50e-6)  # within noise: no blocking on the dead peer
    assert cache_table.recorder("hot").snapshot().hits == 15 * 200 * 2


def test_shutdown_of_an_idle_tracer_is_quick(receiver: OtlpReceiver) -> None:
    assert tracing_state.setup_tracing(otel_env(receiver.endpoint), set_global=False) is not None
    start = time.monotonic()
    tracing_state.shutdown_tracing()
    assert time.monotonic() - start < 1.0
    tracing_state.shutdown_tracing()  # twice is fine
