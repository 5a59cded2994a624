"""Opt-in OpenTelemetry instrumentation of requests and urllib3 (``--tracing.instrument``):
a trace at a real OTLP receiver shows a cache miss on a real redis-server and the call to
a real HTTP backend that followed it; undone when tracing stops."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis as redispy
import requests
import urllib3
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor

import cachewatch
from cachewatch import CacheRegistry
from cachewatch.config import ConfigError, load_config
from cachewatch.tracing import spans as tracing_state

from .otlp_receiver import OtlpReceiver, ReceivedSpan, otlp_receiver
from .servers import LOOPBACK, RedisServer


@pytest.fixture(scope="module")
def backend() -> Iterator[str]:
    """A real HTTP backend: the slow source a cache sits in front of."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{LOOPBACK}:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as running:
        yield running


def env(receiver: OtlpReceiver) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }


def in_trace(spans: list[ReceivedSpan], trace_id: str) -> dict[str, ReceivedSpan]:
    return {s.name: s for s in spans if s.trace_id == trace_id}


def test_a_trace_shows_the_miss_and_the_backend_call_that_followed(
    receiver: OtlpReceiver, backend: str, redis: RedisServer, cache_table: CacheRegistry
) -> None:
    state = tracing_state.setup_tracing(
        env(receiver), set_global=False, instrument=("requests", "urllib3")
    )
    assert state is not None
    plain = redispy.Redis.from_url(redis.url, decode_responses=True)
    client = cachewatch.instrument_redis(plain, {"search_cache": "search:"}, registry=cache_table)
    try:
        app = state.provider.get_tracer("shop")
        with app.start_as_current_span("GET /search") as request:
            with cachewatch.trace_cache_operation(
                "get", "search_cache", registry=cache_table
            ) as op:
                cached = op.result(client.get("search:shoes"))
            if cached is None:  # the miss: ask the backend, then fill the cache
                found = requests.get(f"{backend}/search?q=shoes", timeout=5).json()
                client.set("search:shoes", json.dumps(found))
        trace_id = format(request.get_span_context().trace_id, "032x")
        spans = receiver.wait_for(lambda s: len(in_trace(s, trace_id)) >= 5)
    finally:
        tracing_state.shutdown_tracing()
        plain.close()
    mine = in_trace(spans, trace_id)
    root, miss, http = mine["GET /search"], mine["get search_cache"], mine["GET"]
    assert miss.parent_span_id == root.span_id and miss.attributes["cachewatch.cache.hit"] is False
    assert mine["GET search_cache"].parent_span_id == miss.span_id  # the Redis command
    assert http.parent_span_id == root.span_id and http.kind == 3  # CLIENT
    assert http.start_ns >= miss.end_ns  # the backend call followed the miss
    assert http.scope == "opentelemetry.instrumentation.requests"
    status = http.attributes.get(
        "http.response.status_code", http.attributes.get("http.status_code")
    )
    assert status == 200
    # requests goes through urllib3: with both instrumented, one HTTP span per call
    http_spans = [s for s in spans if s.trace_id == trace_id and s.kind == 3 and "redis" not in str(
        s.attributes.get("db.system.name"))]  # fmt: skip
    assert len(http_spans) == 1
    assert mine["SET search_cache"].start_ns >= http.end_ns


def test_urllib3_alone_and_undone_when_tracing_stops(receiver: OtlpReceiver, backend: str) -> None:
    state = tracing_state.setup_tracing(env(receiver), set_global=False, instrument=("urllib3",))
    assert state is not None
    pool = urllib3.PoolManager()
    try:
        assert URLLib3Instrumentor().is_instrumented_by_opentelemetry
        assert not RequestsInstrumentor().is_instrumented_by_opentelemetry
        with state.provider.get_tracer("worker").start_as_current_span("refresh") as job:
            assert pool.request("GET", f"{backend}/item/1").status == 200
        trace_id = format(job.get_span_context().trace_id, "032x")
        mine = in_trace(receiver.wait_for(lambda s: len(in_trace(s, trace_id)) >= 2), trace_id)
    finally:
        tracing_state.shutdown_tracing()
    assert mine["GET"].parent_span_id == mine["refresh"].span_id
    assert mine["GET"].scope == "opentelemetry.instrumentation.urllib3"
    assert not URLLib3Instrumentor().is_instrumented_by_opentelemetry
    before = len(receiver.received())
    pool.request("GET", f"{backend}/item/2")  # not traced any more
    assert len(receiver.received()) == before


def test_instrumentation_is_off_unless_asked_for(receiver: OtlpReceiver) -> None:
    assert tracing_state.setup_tracing(env(receiver), set_global=False) is not None
    try:
        assert not RequestsInstrumentor().is_instrumented_by_opentelemetry
        assert not URLLib3Instrumentor().is_instrumented_by_opentelemetry
    finally:
        tracing_state.shutdown_tracing()


def test_the_setting_reads_the_flag_and_the_environment() -> None:
    config = load_config("serve", flags={"tracing_instrument": "requests,urllib3"}, environ={})
    assert config.tracing.tracing_instrument == ("requests", "urllib3")
    config = load_config("embedded", environ={"CACHEWATCH_TRACING_INSTRUMENT": "urllib3"})
    assert config.tracing.tracing_instrument == ("urllib3",)
    with pytest.raises(ConfigError, match=r"--tracing.instrument.*aiohttp"):
        load_config("serve", flags={"tracing_instrument": "aiohttp"}, environ={})


def test_the_library_reads_the_environment_when_set_up_without_a_config(
    receiver: OtlpReceiver,
) -> None:
    variables = {**env(receiver), "CACHEWATCH_TRACING_INSTRUMENT": "requests"}
    assert tracing_state.setup_tracing(variables, set_global=False) is not None
    try:
        assert RequestsInstrumentor().is_instrumented_by_opentelemetry
    finally:
        tracing_state.shutdown_tracing()
    assert not RequestsInstrumentor().is_instrumented_by_opentelemetry
