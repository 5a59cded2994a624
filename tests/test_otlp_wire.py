"""tracing/otlp_wire.py: the request bytes equal those of the exporter package's own encoder
(``encode_spans(...).SerializeToString()``) for spans made by the SDK and for generated
spans of every shape, and what the library leaves out is left out here too."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from cachewatch.tracing import otlp_wire
from cachewatch.tracing.otlp_wire import encode_request

from .otlp_receiver import KeptSpans


def library_bytes(spans: list[Any]) -> bytes:
    return bytes(encode_spans(spans).SerializeToString())


def sdk_spans() -> list[Any]:
    """Spans as the SDK makes them: roots, children, a remote parent, an error with its
    exception event, a link, a trace state, two scopes."""
    kept = KeptSpans()
    provider = TracerProvider(resource=Resource({"service.name": "catalog", "pod": "p-1"}))
    provider.add_span_processor(SimpleSpanProcessor(kept))
    tracer = provider.get_tracer("cachewatch", "1.2.3", schema_url="https://example/schema")
    other = provider.get_tracer("app")
    attributes = {"cachewatch.cache.name": "bench", "cachewatch.cache.operation": "get"}
    for hit in (True, False, True):
        tracer.start_span("get bench", attributes={**attributes, "cachewatch.cache.hit": hit}).end()
    with other.start_as_current_span("request", kind=SpanKind.SERVER) as parent:
        tracer.start_span("get bench", attributes=attributes, start_time=5, links=[
            Link(parent.get_span_context(), {"why": "batch"})
        ]).end(end_time=9)  # fmt: skip
        failing = tracer.start_span("put bench", kind=SpanKind.CLIENT)
        failing.record_exception(KeyError("k"))
        failing.set_status(Status(StatusCode.ERROR, "KeyError"))
        failing.end()
    remote = SpanContext(
        trace_id=0xABC, span_id=0xDEF, is_remote=True, trace_flags=TraceFlags(1),
        trace_state=TraceState([("vendor", "v1"), ("other", "2")]),
    )  # fmt: skip
    tracer.start_span("remote child", context=trace.set_span_in_context(
        trace.NonRecordingSpan(remote)
    )).end()  # fmt: skip
    return kept.spans


def test_sdk_spans_encode_as_the_library_does() -> None:
    spans = sdk_spans()
    assert len(spans) == 7
    encoded = encode_request(spans)
    assert encoded == library_bytes(spans)
    request = ExportTraceServiceRequest.FromString(encoded)
    scopes = request.resource_spans[0].scope_spans
    assert [scope.scope.name for scope in scopes] == ["cachewatch", "app"]
    assert {span.name for span in scopes[0].spans} >= {"get bench", "put bench", "remote child"}


def test_the_attribute_cache_gives_the_same_bytes_again() -> None:
    spans = sdk_spans()
    otlp_wire._PAIRS.clear()
    first = encode_request(spans)
    assert otlp_wire._PAIRS  # the repeated attributes are kept ...
    assert encode_request(spans) == first == library_bytes(spans)  # ... and give the same bytes


def test_the_attribute_cache_keeps_values_of_different_types_apart() -> None:
    # True == 1 and hash(True) == hash(1): a cache keyed by value alone would mix them up
    spans = [span_of({"a": value}) for value in (True, 1, 1.0, "1", False, 0, 0.0, -0.0)]
    assert encode_request(spans) == library_bytes(spans)


def test_the_attribute_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(otlp_wire, "_PAIRS_LIMIT", 8)
    spans = [span_of({"key": f"value-{n}"}) for n in range(50)]
    assert encode_request(spans) == library_bytes(spans)
    assert len(otlp_wire._PAIRS) <= 8


CONTEXT = SpanContext(trace_id=1 << 100, span_id=7, is_remote=False)


def span_of(attributes: dict[str, Any], **fields: Any) -> ReadableSpan:
    return ReadableSpan(
        "op", context=CONTEXT, attributes=attributes, start_time=1, end_time=2, **fields
    )


def test_what_the_library_leaves_out_is_left_out_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    attributes: dict[str, Any] = {
        "ok": 1,
        "too big": 1 << 63,
        "too small": -(1 << 63) - 1,
        "no type": object(),
        "bad in a list": [1, object()],
        "after": "kept",
    }
    spans = [span_of(attributes)]
    logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)  # the library logs its own
    with caplog.at_level(logging.WARNING, logger="cachewatch.tracing"):
        encoded = encode_request(spans)
    assert encoded == library_bytes(spans)
    kept = ExportTraceServiceRequest.FromString(encoded).resource_spans[0].scope_spans[0].spans[0]
    assert [pair.key for pair in kept.attributes] == ["ok", "after"]
    assert sum("cannot be encoded" in record.message for record in caplog.records) == 4


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.binary(max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
attribute_maps = st.dictionaries(st.text(max_size=6), values, max_size=4)
ids = st.integers(min_value=0, max_value=(1 << 64) - 1)
contexts = st.builds(
    SpanContext,
    trace_id=st.integers(min_value=0, max_value=(1 << 128) - 1),
    span_id=ids,
    is_remote=st.booleans(),
    trace_flags=st.sampled_from([TraceFlags(0), TraceFlags(1)]),
    trace_state=st.one_of(
        st.none(),
        st.just(TraceState()),
        st.just(TraceState([("vendor", "a=b"), ("k", "v")])),
    ),
)
times = st.one_of(st.none(), st.just(0), ids)
events = st.builds(
    Event, name=st.text(max_size=6), attributes=attribute_maps, timestamp=st.one_of(st.just(0), ids)
)
links = st.builds(Link, context=contexts, attributes=attribute_maps)
statuses = st.one_of(
    st.builds(Status),
    st.builds(Status, st.sampled_from(list(StatusCode)), st.one_of(st.none(), st.text(max_size=6))),
)
resources = st.sampled_from(
    [
        Resource({"service.name": "catalog"}),
        Resource({"service.name": "catalog"}),  # equal to the first, another object
        Resource({"service.name": "orders", "n": 3}, schema_url="https://example/r"),
        Resource({}),
    ]
)
scopes = st.sampled_from(
    [
        None,
        InstrumentationScope("cachewatch"),
        InstrumentationScope("cachewatch", "1.0", "https://example/s", {"a": 1}),
        InstrumentationScope("", None),
    ]
)
generated_spans = st.builds(
    ReadableSpan,
    name=st.text(max_size=10),
    context=contexts,
    parent=st.one_of(st.none(), contexts),
    resource=resources,
    attributes=attribute_maps,
    events=st.lists(events, max_size=2),
    links=st.lists(links, max_size=2),
    kind=st.sampled_from(list(SpanKind)),
    status=statuses,
    start_time=times,
    end_time=times,
    instrumentation_scope=scopes,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(generated_spans, max_size=5))
def test_generated_spans_encode_as_the_library_does(spans: list[ReadableSpan]) -> None:
    assert encode_request(spans) == library_bytes(spans)
