"""tracing/direct.py: a span recorded after the fact without the SDK's live span is the span
the SDK makes from the same inputs (same ids, flags, trace state, parent, resource, scope:
the same OTLP bytes and the same JSON), and the SDK's way is taken wherever the direct one
would differ."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.span import TraceState

from cachewatch._version import __version__
from cachewatch.tracing.direct import DirectSpans, OwnTracerProvider
from cachewatch.tracing.sdk import DecidedSampler, Tracing, build_resource
from cachewatch.tracing.settings import tracing_settings

from .otlp_receiver import KeptSpans

ATTRIBUTES = {"cachewatch.cache.name": "users", "cachewatch.cache.operation": "get"}


class CountingIds(IdGenerator):  # type: ignore[misc]
    """Ids from a counter: two providers given one each make the same ids in turn."""

    def __init__(self, random: bool) -> None:
        self._next = itertools.count(0x1000)
        self._random = random

    def generate_span_id(self) -> int:
        return next(self._next)

    def generate_trace_id(self) -> int:
        return next(self._next) << 64

    def is_trace_id_random(self) -> bool:
        return self._random


def tracing_with(random: bool, limits: SpanLimits | None = None) -> tuple[Tracing, KeptSpans]:
    """A tracer as the own pipeline makes it, its spans kept in memory, with no direct way."""
    kept = KeptSpans()
    limits = limits or SpanLimits()
    provider = OwnTracerProvider(
        sampler=DecidedSampler(ALWAYS_ON),
        resource=RESOURCE,
        id_generator=CountingIds(random),
        span_limits=limits,
    )
    provider.add_span_processor(SimpleSpanProcessor(kept))
    tracer = provider.get_tracer("cachewatch", __version__)
    settings = tracing_settings({"OTEL_TRACES_EXPORTER": "otlp"})
    return Tracing(settings, tracer, provider, None), kept


RESOURCE = build_resource({"service.name": "checkout"})


@pytest.fixture
def remote_parent() -> Iterator[None]:
    remote = SpanContext(
        trace_id=0xFEED << 64, span_id=0xBEEF, is_remote=True, trace_flags=TraceFlags(0x03),
        trace_state=TraceState([("vendor", "v1")]),
    )  # fmt: skip
    token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(remote)))
    yield
    otel_context.detach(token)


def direct_way(tracing: Tracing, limits: SpanLimits | None = None) -> DirectSpans | None:
    return DirectSpans.for_tracer(
        tracing.provider,
        tracing.tracer,
        limits or SpanLimits(),
        tracing.read_parent,
        tracing.record_with_sdk,
    )


def record_each(tracing: Tracing) -> list[int | None]:
    """The same spans, in the same order: a root told, a root found, a child of a live span."""
    ids = [
        tracing.record("get users", {**ATTRIBUTES, "cachewatch.cache.hit": True}, 10, 20, root=True)
    ]
    ids.append(tracing.record("put users", ATTRIBUTES, 30, 45))
    parent = tracing.tracer.start_span("request", start_time=5)
    with trace.use_span(parent, end_on_exit=False):
        ids.append(tracing.record("get users", ATTRIBUTES, 50, 60))
    parent.end(end_time=70)
    return ids


def pair(random: bool) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    sdk, sdk_kept = tracing_with(random)
    direct, direct_kept = tracing_with(random)
    direct.use_direct(direct_way(direct))
    assert direct.direct is not None and sdk.direct is None
    return record_each(sdk), record_each(direct), sdk_kept.spans, direct_kept.spans


@pytest.mark.parametrize("random", [True, False])
def test_direct_spans_are_the_sdks(random: bool) -> None:
    sdk_ids, direct_ids, sdk_spans, direct_spans = pair(random)
    assert sdk_ids == direct_ids and None not in sdk_ids
    assert len(sdk_spans) == len(direct_spans) == 4
    assert encode_spans(direct_spans) == encode_spans(sdk_spans)
    assert [s.to_json() for s in direct_spans] == [s.to_json() for s in sdk_spans]
    flags = {span.context.trace_flags for span in direct_spans}
    assert flags == ({TraceFlags(0x03)} if random else {TraceFlags(0x01)})
    child = direct_spans[2]
    assert child.parent is not None and child.parent.span_id == direct_spans[3].context.span_id
    assert child.instrumentation_scope == sdk_spans[2].instrumentation_scope


def test_a_child_of_a_remote_parent_joins_its_trace_and_state(remote_parent: None) -> None:
    _, direct_ids, sdk_spans, direct_spans = pair(random=False)
    assert encode_spans(direct_spans) == encode_spans(sdk_spans)
    found = direct_spans[1]  # the root that was not told: a child of the remote span
    assert found.context.trace_id == 0xFEED << 64 and found.parent.is_remote
    assert found.context.trace_state == TraceState([("vendor", "v1")])
    assert found.context.trace_flags == TraceFlags(0x03)  # the parent's random flag kept
    assert direct_ids[1] == 0xFEED << 64


class SeesStarts(SpanProcessor):  # type: ignore[misc]
    def __init__(self) -> None:
        self.started: list[str] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.started.append(span.name)


def test_a_processor_that_sees_starts_gets_the_sdks_spans_from_then_on() -> None:
    tracing, kept = tracing_with(random=True)
    tracing.use_direct(direct_way(tracing))
    tracing.record("get users", ATTRIBUTES, 1, 2, root=True)
    starts = SeesStarts()
    tracing.provider.add_span_processor(starts)
    tracing.record("get users", ATTRIBUTES, 3, 4, root=True)
    assert starts.started == ["get users"] and len(kept.spans) == 2


def test_more_attributes_than_the_limit_take_the_sdks_way() -> None:
    limits = SpanLimits(max_span_attributes=1)
    tracing, kept = tracing_with(random=True, limits=limits)
    tracing.use_direct(direct_way(tracing, limits))
    assert tracing.direct is not None and not tracing.direct.usable(ATTRIBUTES)
    tracing.record("get users", ATTRIBUTES, 1, 2, root=True)
    assert len(kept.spans[0].attributes) == 1 and kept.spans[0].dropped_attributes == 1


def test_no_direct_way_with_a_length_limit_sdk_metrics_or_the_sdk_disabled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tracing, _ = tracing_with(random=True)
    limited = SpanLimits(max_span_attribute_length=4)
    assert direct_way(tracing, limited) is None
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    assert direct_way(tracing) is None
    monkeypatch.delenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    disabled = OwnTracerProvider()
    tracer = disabled.get_tracer("cachewatch")
    assert (
        DirectSpans.for_tracer(
            disabled, tracer, SpanLimits(), tracing.read_parent, tracing.record_with_sdk
        )
        is None
    )


def test_the_own_pipeline_records_directly() -> None:
    from cachewatch.tracing import pipeline

    settings = tracing_settings({"OTEL_TRACES_EXPORTER": "console"})
    tracing = pipeline.start_own(settings, set_global=False)
    assert tracing is not None
    try:
        assert isinstance(tracing.direct, DirectSpans)
        assert tracing.record == tracing.direct.record  # what the mapping's lookups call
    finally:
        tracing.shutdown(1.0)
