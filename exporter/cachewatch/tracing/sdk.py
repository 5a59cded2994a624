"""The OpenTelemetry SDK side of tracing: provider, sampler, exporters, bounded shutdown.

Imported only by ``spans.setup_tracing`` once the ``OTEL_*`` variables turn tracing on,
so that a process without tracing never loads the SDK or gRPC.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar, Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
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

log = logging.getLogger("cachewatch.tracing")

_DECIDED = otel_context.create_key("cachewatch-decided")
"""Marks the context of a span that cachewatch already decided to record."""
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


def _current_span_reader() -> Callable[[], Any]:
    """The cheapest way to read the active span: straight from the ContextVar that holds
    OpenTelemetry's current context (two C calls), falling back to the public API when a
    different runtime context is configured."""
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    var = getattr(runtime, "_current_context", None)
    try:
        from opentelemetry.trace.propagation import _SPAN_KEY as key
    except ImportError:  # a future API without it: the public, slower way
        var = None
    if isinstance(var, ContextVar):
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
    API: a root operation draws against the ratio, a child follows its parent's rule."""
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


class Tracing:
    """One running tracer: the provider, its processors and exporters, the decision."""

    def __init__(self, settings: TracingSettings, *, set_global: bool = True) -> None:
        self.settings = settings
        self.provider = TracerProvider(
            sampler=DecidedSampler(configured_sampler(settings)),
            resource=build_resource(settings.resource),
            shutdown_on_exit=False,  # spans' own atexit hook shuts down in bounded time
        )
        self.exporters: list[SpanExporter] = []
        self.processors: list[SpanProcessor] = []
        for name in settings.exporters:
            exporter, processor = self._exporter(name)
            self.exporters.append(exporter)
            self.processors.append(processor)
            self.provider.add_span_processor(processor)
        self.tracer = self.provider.get_tracer("cachewatch", __version__)
        self.decide = make_decider(settings)
        if set_global and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            trace.set_tracer_provider(self.provider)

    def _exporter(self, name: str) -> tuple[SpanExporter, SpanProcessor]:
        if name == "console":
            console = ConsoleSpanExporter()
            return console, SimpleSpanProcessor(console)
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        endpoint = self.settings.endpoint
        otlp = OTLPSpanExporter(
            endpoint=endpoint,
            insecure=endpoint.startswith("http://") or None,
            timeout=self.settings.timeout_seconds,
        )
        delay = self.settings.schedule_delay_millis
        return otlp, BatchSpanProcessor(otlp, schedule_delay_millis=delay)

    # --- spans --------------------------------------------------------------------------------
    def start(self, name: str, attributes: Mapping[str, Any], *, client: bool = False) -> Any:
        marked = otel_context.set_value(_DECIDED, True)
        return self.tracer.start_span(
            name,
            context=marked,
            kind=SpanKind.CLIENT if client else SpanKind.INTERNAL,
            attributes=attributes,
        )

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
        """Flush and stop within ``timeout`` seconds: the SDK's own shutdown may wait 30 s on a
        dead collector (retries with backoff), so it runs in a helper thread; past most of
        the budget the exporters are shut down directly, which aborts their retries."""
        done = threading.Event()

        def run() -> None:
            try:
                self.provider.shutdown()
            except Exception:  # shutdown must not raise into the caller
                log.debug("tracer shutdown failed", exc_info=True)
            finally:
                done.set()

        worker = threading.Thread(target=run, name="cachewatch-trace-shutdown", daemon=True)
        worker.start()
        if done.wait(timeout * 0.75):
            return
        log.warning("trace export did not finish in time; dropping what is left")
        # The SDK would now log one warning per aborted step; the line above says it all.
        logging.getLogger("opentelemetry.exporter.otlp.proto.grpc.exporter").setLevel(logging.ERROR)
        for exporter in self.exporters:
            try:
                exporter.shutdown()
            except Exception:
                log.debug("span exporter shutdown failed", exc_info=True)
        done.wait(timeout * 0.2)
