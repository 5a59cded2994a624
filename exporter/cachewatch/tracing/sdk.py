"""The OpenTelemetry SDK side of tracing: the running tracer, the decision made before
the span API is called, and the sampler that honours it.

A running tracer sends its spans either through cachewatch's own pipeline (``pipeline``:
provider, exporters, bounded shutdown) or through the application's tracer provider
(``application``). Imported only by ``spans.setup_tracing`` once tracing is asked for, so
that a process without tracing never loads the SDK or gRPC.
"""

from __future__ import annotations

import contextvars
import logging
import math
import random
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.sdk.version import __version__ as sdk_version
from opentelemetry.trace import SpanKind, Status, StatusCode

from .._version import __version__
from .attributes import ERROR_TYPE
from .settings import TracingSettings

if TYPE_CHECKING:
    from .direct import DirectSpans

log = logging.getLogger("cachewatch.tracing")

_DECIDED = otel_context.create_key("cachewatch-decided")
"""Marks the context of a span that cachewatch already decided to record."""
_DECIDED_ROOT = otel_context.set_value(_DECIDED, True, otel_context.Context())
"""The context of a decided span with no parent, made once: most lookups are roots, and
``DecidedSampler`` knows this one without reading it."""
_TRACE_ID_LIMIT = (1 << 64) - 1


class DecidedSampler(Sampler):
    """Records the spans cachewatch decided to record; asks the configured sampler about
    every other span (the application's own, when this provider is the global one)."""

    def __init__(self, configured: Sampler) -> None:
        self.configured = configured

    def should_sample(
        self,
        parent_context: Any,
        trace_id: int,
        name: str,
        kind: Any = None,
        attributes: Any = None,
        links: Sequence[Any] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if parent_context is _DECIDED_ROOT:
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, None)
        if parent_context is not None and parent_context.get(_DECIDED):
            parent = trace.get_current_span(parent_context).get_span_context()
            state = parent.trace_state if parent.is_valid else None
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, state)
        return self.configured.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"CachewatchDecided{{{self.configured.get_description()}}}"


def configured_sampler(settings: TracingSettings) -> Sampler:
    """The SDK sampler the variables name, for spans that cachewatch did not start."""
    ratio = settings.root_ratio
    root: Sampler = ALWAYS_ON if ratio >= 1.0 else TraceIdRatioBased(ratio)
    if ratio <= 0.0:
        root = ALWAYS_OFF
    if settings.parent_rule == "always":
        return ALWAYS_ON
    if settings.parent_rule == "trace_id":
        return root
    return ParentBased(root)


def _context_var() -> ContextVar[Any] | None:
    """The ContextVar that holds OpenTelemetry's current context, when the runtime context
    is the default one (None for another runtime context)."""
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    var = getattr(runtime, "_current_context", None)
    return var if isinstance(var, ContextVar) else None


def root_probe() -> tuple[Callable[[], object], object] | None:
    """``(read, empty)``: ``read() is empty`` says in one C call that no context was ever
    attached in this thread or task (so no span is active), where reading the active span
    takes two and a comparison. ``empty`` is the ContextVar's default, read in a fresh
    context in case tracing starts inside an attached one. None for another runtime."""
    var = _context_var()
    if var is None:
        return None
    return var.get, contextvars.Context().run(var.get)


def make_root_gaps(settings: TracingSettings) -> Callable[[], int]:
    """``gap()``: how many root operations from now to the next recorded one (1: the next
    one), drawn from the geometric distribution of ``random() < ratio`` drawn once per
    operation, so that a caller can count down instead of drawing each time; 0 when no
    root operation is ever recorded. The rules as ``make_decider`` has them for roots."""
    rule = settings.parent_rule
    ratio = settings.root_ratio
    if rule == "never" or (rule in ("follow", "trace_id") and ratio <= 0.0):
        return lambda: 0
    if records_every_root(settings):
        return lambda: 1
    draw = random.random
    log = math.log
    log_miss = math.log1p(-ratio)

    def gap() -> int:
        # P(gap > k) = P(1 - U <= (1 - ratio) ** k) = (1 - ratio) ** k for U uniform in [0, 1)
        return int(log(1.0 - draw()) / log_miss) + 1

    return gap


def records_every_root(settings: TracingSettings) -> bool:
    """Whether every root operation is recorded (``make_root_gaps`` is always 1)."""
    rule = settings.parent_rule
    return rule in ("always", "delegate") or (rule != "never" and settings.root_ratio >= 1.0)


def _current_span_reader() -> Callable[[], Any]:
    """The cheapest way to read the active span: straight from the ContextVar that holds
    OpenTelemetry's current context (two C calls), falling back to the public API when a
    different runtime context is configured."""
    var = _context_var()
    try:
        from opentelemetry.trace.propagation import _SPAN_KEY as key
    except ImportError:  # a future API without it: the public, slower way
        var = None
    if var is not None:
        get_context = var.get

        def read() -> Any:
            return get_context().get(key)

        return read

    def read_slow() -> Any:
        span = trace.get_current_span()
        return None if span is trace.INVALID_SPAN else span

    return read_slow


def make_decider(settings: TracingSettings) -> Callable[[], bool]:
    """``decide()``: should an operation starting now be recorded? Never touches the span
    API: a root operation draws against the ratio, a child follows its parent's rule
    (``always`` and ``delegate`` say yes to all: the latter leaves it to the SDK sampler)."""
    read_parent = _current_span_reader()
    ratio = settings.root_ratio
    draw = random.random
    rule = settings.parent_rule
    bound = round(ratio * (_TRACE_ID_LIMIT + 1))

    if rule == "follow":

        def decide() -> bool:
            parent = read_parent()
            if parent is not None:
                context = parent.get_span_context()
                if context.is_valid:
                    return bool(context.trace_flags & 1)
            return draw() < ratio

    elif rule == "never":

        def decide() -> bool:
            return False

    elif rule == "trace_id":

        def decide() -> bool:
            parent = read_parent()
            if parent is not None:
                context = parent.get_span_context()
                if context.is_valid:
                    return bool(context.trace_id & _TRACE_ID_LIMIT < bound)
            return draw() < ratio

    else:

        def decide() -> bool:
            return True

    return decide


def build_resource(attributes: Mapping[str, str]) -> Resource:
    return Resource(
        {
            "telemetry.sdk.language": "python",
            "telemetry.sdk.name": "opentelemetry",
            "telemetry.sdk.version": sdk_version,
            "service.version": __version__,
            **attributes,
        }
    )


class Pipeline(Protocol):
    """Where a tracer's spans go, as far as stopping it is concerned."""

    def shutdown(self, timeout: float) -> None: ...


class Tracing:
    """One running tracer: its settings, the decision, span helpers, and how to stop.

    ``marks_decided``: the spans cachewatch decided to record are marked so that the
    tracer's ``DecidedSampler`` records them without asking again (a root drawn at ratio r
    must not be drawn a second time by a ratio sampler: that would record r squared).
    Without it (an application sampler cachewatch cannot mirror), every operation asks
    the SDK sampler, and an unsampled answer is a non-recording span.
    """

    def __init__(
        self,
        settings: TracingSettings,
        tracer: Any,
        provider: Any,
        pipeline: Pipeline | None,
        *,
        marks_decided: bool = True,
    ) -> None:
        self.settings = settings
        self.tracer = tracer
        self.provider = provider
        """The tracer provider the spans go through: cachewatch's own or the application's."""
        self.pipeline = pipeline
        """cachewatch's own pipeline, or None when the spans go through the application's."""
        self.decide = make_decider(settings)
        self.root_gap = make_root_gaps(settings)
        """Root operations to the next recorded one (``make_root_gaps``)."""
        self.every_root = records_every_root(settings)
        self.root_probe = root_probe()
        """How a caller tells, in one call, that no span is active (``root_probe``)."""
        self._marks_decided = marks_decided
        self.read_parent = _current_span_reader()
        """The active span, or None (``_current_span_reader``)."""
        self.direct: DirectSpans | None = None
        """Set by cachewatch's own pipeline (``use_direct``): spans recorded after the fact
        skip the SDK's live span where that gives the same span."""
        self.record: Callable[..., int | None] = self.record_with_sdk
        """Records a span that already happened: ``record_with_sdk``, or the direct way's
        ``record`` (which falls back to it) once ``use_direct`` set one."""
        self._stops: list[Callable[[], None]] = []

    @property
    def owns_pipeline(self) -> bool:
        return self.pipeline is not None

    def on_shutdown(self, stop: Callable[[], None]) -> None:
        """Run ``stop`` (undo an instrumentation) when this tracer stops, before the pipeline."""
        self._stops.append(stop)

    # --- spans --------------------------------------------------------------------------------
    def start(self, name: str, attributes: Mapping[str, Any], *, client: bool = False) -> Any:
        context = otel_context.set_value(_DECIDED, True) if self._marks_decided else None
        return self.tracer.start_span(
            name,
            context=context,
            kind=SpanKind.CLIENT if client else SpanKind.INTERNAL,
            attributes=attributes,
        )

    def use_direct(self, direct: DirectSpans | None) -> None:
        """Record spans that already happened through ``direct`` (None: the SDK's way)."""
        self.direct = direct
        self.record = direct.record if direct is not None else self.record_with_sdk

    def record_with_sdk(
        self,
        name: str,
        attributes: Mapping[str, Any],
        start_ns: int,
        end_ns: int,
        exc: BaseException | None = None,
        root: bool = False,
    ) -> int | None:
        """A span that started at ``start_ns`` and ended at ``end_ns`` (``time_ns`` clock);
        its trace id (an int: formatting it costs a tenth of the rest, so the exemplar
        formats it when read), or None when the SDK sampler did not record it. ``root``:
        the caller saw that no span is active."""
        context = None
        if self._marks_decided:
            context = (
                _DECIDED_ROOT
                if root or self.read_parent() is None
                else otel_context.set_value(_DECIDED, True)
            )
        span = self.tracer.start_span(
            name, context=context, attributes=attributes, start_time=start_ns
        )
        # a sampled span is recording; an unsampled one (or a disabled tracer's) is not exported
        span_context = span.get_span_context()
        trace_id: int | None = span_context.trace_id if span_context.trace_flags & 1 else None
        if exc is not None:
            self.record_error(span, exc)
        span.end(end_time=end_ns)
        return trace_id

    def attach(self, span: Any) -> Token[Any]:
        return otel_context.attach(trace.set_span_in_context(span))

    def detach(self, token: Token[Any]) -> None:
        otel_context.detach(token)

    def record_error(self, span: Any, exc: BaseException) -> None:
        kind = type(exc).__name__
        span.record_exception(exc)
        span.set_attribute(ERROR_TYPE, kind)
        span.set_status(Status(StatusCode.ERROR, kind))

    def mark_failed(self, span: Any, description: str) -> None:
        span.set_status(Status(StatusCode.ERROR, description))

    # --- shutdown -----------------------------------------------------------------------------
    def shutdown(self, timeout: float) -> None:
        """Undo the instrumentations, then stop the own pipeline within ``timeout`` seconds
        (the application's provider is the application's to stop)."""
        for stop in reversed(self._stops):
            try:
                stop()
            except Exception:  # shutdown must not raise into the caller
                log.debug("undoing an instrumentation failed", exc_info=True)
        if self.pipeline is not None:
            self.pipeline.shutdown(timeout)
