"""Spans that already happened, handed straight to the span processors of cachewatch's own
tracer provider as the ``ReadableSpan`` they receive, without the SDK's live ``Span``.

Why not ``Tracer.start_span`` + ``Span.end``: for a span recorded after the fact (an
in-process lookup, a put) they validate every attribute, ask the sampler cachewatch has
already answered, take a lock, build a ``Span`` and then a ``ReadableSpan`` copy of it:
33-44 µs a span on the 2-core bench machine, where making the ``ReadableSpan`` directly takes
4-6 µs. Such a span has no children and nothing set on it later, which is all the live Span
is for. bench/instrument.py prints both (the "SDK span alone" anchor and one sampled lookup).

Used only where it gives the same span:

* through cachewatch's own provider (``pipeline``), whose processors run nothing when a
  span starts (``OwnTracerProvider.starts_spans``: an application that adds a processor
  with an ``on_start`` gets the SDK's path from then on);
* with no attribute value length limit set and no more attributes than the count limit
  (the SDK would cut them), and without the SDK's own metrics of spans, which count in
  ``start_span``;
* for an operation that did not fail: a failure's exception event goes through the SDK.

The span equals, field for field, the one the SDK makes from the same inputs (ids, trace
flags, trace state, parent, resource, scope): tests/test_direct.py compares their OTLP bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.sdk.trace import (
    ReadableSpan,
    SpanLimits,
    SpanProcessor,
    Tracer,
    TracerProvider,
)
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, TraceFlags

from .settings import sdk_span_metrics_on

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_SAMPLED_RANDOM = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)


def _starts_spans(processor: Any) -> bool:
    """Whether a processor may act when a span starts or is about to end, which a span
    made here skips: the SDK's batch and simple processors do nothing then."""
    kind = type(processor)
    if kind in (BatchSpanProcessor, SimpleSpanProcessor):
        return False
    return kind.on_start is not SpanProcessor.on_start or (
        getattr(kind, "_on_ending", None) is not getattr(SpanProcessor, "_on_ending", None)
    )


class RecordedSpan(ReadableSpan):
    """A span made here: no events, no links, nothing dropped, which these class attributes
    say without the properties' work (each ``dropped_*`` is an ABC ``isinstance`` check,
    ``events`` and ``links`` copy a list), for every exporter that reads them."""

    events: tuple[Any, ...] = ()
    links: tuple[Any, ...] = ()
    dropped_attributes = 0
    dropped_events = 0
    dropped_links = 0


class OwnTracerProvider(TracerProvider):
    """A ``TracerProvider`` that knows whether any of its processors acts when a span
    starts (``starts_spans``): while none does, ``DirectSpans`` may skip the start."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.starts_spans = False
        self.processors: tuple[Any, ...] = ()
        """The processors added, in order: a span's end goes to each, as the provider's
        own multi-processor would hand it."""

    def add_span_processor(self, span_processor: Any) -> None:
        super().add_span_processor(span_processor)
        self.processors += (span_processor,)
        if _starts_spans(span_processor):
            self.starts_spans = True


class DirectSpans:
    """Records finished spans of one tracer of an ``OwnTracerProvider`` as ``ReadableSpan``\\ s
    handed to its processors; ``usable`` says when that gives the SDK's span."""

    def __init__(
        self,
        provider: OwnTracerProvider,
        tracer: Tracer,
        limits: SpanLimits,
        read_parent: Callable[[], Any],
        fallback: Callable[..., int | None],
    ) -> None:
        self._provider = provider
        self._fallback = fallback
        self._resource = tracer.resource
        info = tracer.instrumentation_info
        self._info = info
        self._scope = InstrumentationScope(info.name, info.version, info.schema_url, None)
        self._trace_id = tracer.id_generator.generate_trace_id
        self._span_id = tracer.id_generator.generate_span_id
        self._root_flags = _SAMPLED_RANDOM if tracer.id_generator.is_trace_id_random() else _SAMPLED
        self._read_parent = read_parent
        count = limits.max_span_attributes
        self._max_attributes = count if count is not None else 1 << 62

    @classmethod
    def for_tracer(
        cls,
        provider: TracerProvider,
        tracer: Any,
        limits: SpanLimits,
        read_parent: Callable[[], Any],
        fallback: Callable[..., int | None],
    ) -> DirectSpans | None:
        """The direct way for ``tracer``, or None where it would not give the SDK's span."""
        if not isinstance(provider, OwnTracerProvider) or not isinstance(tracer, Tracer):
            return None  # OTEL_SDK_DISABLED gives a no-op tracer: nothing is recorded
        if limits.max_span_attribute_length is not None:
            return None
        if sdk_span_metrics_on():
            return None
        return cls(provider, tracer, limits, read_parent, fallback)

    def usable(self, attributes: Mapping[str, Any]) -> bool:
        return not self._provider.starts_spans and len(attributes) <= self._max_attributes

    def record(
        self,
        name: str,
        attributes: Mapping[str, Any],
        start_ns: int,
        end_ns: int,
        exc: BaseException | None = None,
        root: bool = False,
    ) -> int | None:
        """A sampled span from ``start_ns`` to ``end_ns``, child of the active span unless
        ``root``; its trace id. ``Tracing.record``'s signature: what the direct way cannot
        record as the SDK would (``usable``, a failure) goes to ``fallback``."""
        if exc is not None or not self.usable(attributes):
            return self._fallback(name, attributes, start_ns, end_ns, exc, root)
        parent = None if root else self._read_parent()
        context = parent.get_span_context() if parent is not None else None
        if context is not None and context.is_valid:
            trace_id: int = context.trace_id
            flags = _SAMPLED_RANDOM if context.trace_flags.random_trace_id else _SAMPLED
            own = SpanContext(trace_id, self._span_id(), False, flags, context.trace_state)
        else:
            context = None
            trace_id = self._trace_id()
            own = SpanContext(trace_id, self._span_id(), False, self._root_flags)
        span = RecordedSpan(
            name,
            own,
            context,
            self._resource,
            dict(attributes),
            start_time=start_ns,
            end_time=end_ns,
            instrumentation_info=self._info,
            instrumentation_scope=self._scope,
        )
        for processor in self._provider.processors:
            processor.on_end(span)
        return trace_id
