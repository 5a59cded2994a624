"""cachewatch's own trace pipeline, for a process whose application has not configured
OpenTelemetry (``cachewatch serve``, ``cachewatch demo``, an application without an SDK
tracer provider): a ``TracerProvider`` with the resource and sampler of the ``OTEL_*``
variables, one processor per exporter (OTLP over gRPC, Zipkin JSON over HTTP, console),
and a shutdown bounded in time.
"""

from __future__ import annotations

import functools
import logging
import threading
import weakref
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

from .._version import __version__
from .direct import DirectSpans, OwnTracerProvider
from .otlp_wire import encode_request
from .sdk import DecidedSampler, Tracing, build_resource, configured_sampler, log
from .settings import TracingSettings

EXTRA_OF_EXPORTER = {"otlp": "tracing", "zipkin": "zipkin"}
"""The pip extra that brings each exporter's package."""

_OWN_PROVIDERS: weakref.WeakSet[TracerProvider] = weakref.WeakSet()
"""Providers this module made: a global provider among them is not the application's."""


def is_own_provider(provider: object) -> bool:
    return provider in _OWN_PROVIDERS


@functools.cache
def wire_otlp_exporter() -> Any:
    """OpenTelemetry's OTLP/gRPC span exporter with cachewatch's wire encoder
    (``otlp_wire``: the same bytes at a fifth of the cost per span); a batch the wire encoder
    cannot take goes through the library's encoder instead. Made on first use: the gRPC
    exporter is imported only when an OTLP exporter is asked for."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    class WireOTLPSpanExporter(OTLPSpanExporter):
        def _translate_data(self, data: Any) -> Any:
            try:
                encoded = encode_request(data)
            except Exception:  # noqa: BLE001  # the library's encoder decides what to do
                log.debug("wire encoding failed; using the library's", exc_info=True)
                return super()._translate_data(data)
            return ExportTraceServiceRequest.FromString(encoded)

    return WireOTLPSpanExporter


def _exporter(name: str, settings: TracingSettings) -> tuple[SpanExporter, bool]:
    """The exporter ``name`` and whether it is batched (all but the console's)."""
    if name == "console":
        return ConsoleSpanExporter(), False
    if name == "zipkin":
        from opentelemetry.exporter.zipkin.json import ZipkinExporter

        zipkin = ZipkinExporter(
            endpoint=settings.zipkin_endpoint,
            timeout=settings.zipkin_timeout_seconds,  # type: ignore[arg-type]  # requests takes a float
        )
        return zipkin, True
    endpoint = settings.endpoint
    otlp = wire_otlp_exporter()(
        endpoint=endpoint,
        insecure=endpoint.startswith("http://") or None,
        timeout=settings.timeout_seconds,
    )
    return otlp, True


class OwnPipeline:
    """The provider, its processors and exporters; stops within a deadline."""

    def __init__(self, settings: TracingSettings) -> None:
        self.limits = SpanLimits()  # the provider's own default, read from OTEL_* as it would
        self.provider = OwnTracerProvider(
            sampler=DecidedSampler(configured_sampler(settings)),
            span_limits=self.limits,
            resource=build_resource(settings.resource),
            shutdown_on_exit=False,  # spans' own atexit hook shuts down in bounded time
        )
        _OWN_PROVIDERS.add(self.provider)
        self.exporters: list[SpanExporter] = []
        for name in settings.exporters:
            try:
                exporter, batched = _exporter(name, settings)
            except ImportError as exc:
                log.warning(
                    "OTEL_TRACES_EXPORTER=%s cannot start (%s): pip install 'cachewatch[%s]'",
                    name, exc, EXTRA_OF_EXPORTER.get(name, "tracing"),
                )  # fmt: skip
                continue
            self.exporters.append(exporter)
            if batched:
                delay = settings.schedule_delay_millis
                self.provider.add_span_processor(
                    BatchSpanProcessor(exporter, schedule_delay_millis=delay)
                )
            else:
                self.provider.add_span_processor(SimpleSpanProcessor(exporter))

    def shutdown(self, timeout: float) -> None:
        """Flush and stop within ``timeout`` seconds: the SDK's own shutdown may wait 30 s on a
        dead collector (retries with backoff), so it runs in a helper thread; past most of
        the budget the exporters are shut down directly, which aborts their retries."""
        done = threading.Event()

        def run() -> None:
            try:
                self.provider.shutdown()
            except Exception:  # noqa: BLE001  # shutdown must not raise into the caller
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
            except Exception:  # noqa: BLE001
                log.debug("span exporter shutdown failed", exc_info=True)
        done.wait(timeout * 0.2)


def start_own(settings: TracingSettings, *, set_global: bool) -> Tracing | None:
    """A tracer on cachewatch's own pipeline; None when none of its exporters can start.
    ``set_global`` installs the provider as OpenTelemetry's global one when the application
    has none, so that the application's own spans take the same way."""
    pipeline = OwnPipeline(settings)
    if not pipeline.exporters:
        pipeline.provider.shutdown()
        return None
    provider = pipeline.provider
    if set_global and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    tracer = provider.get_tracer("cachewatch", __version__)
    tracing = Tracing(settings, tracer, provider, pipeline)
    tracing.use_direct(
        DirectSpans.for_tracer(
            provider, tracer, pipeline.limits, tracing.read_parent, tracing.record_with_sdk
        )
    )
    return tracing
