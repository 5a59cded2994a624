"""What exporting a span over OTLP costs the export thread: the exporter package's encoder
(``encode_spans``, protobuf objects, then serialised) against cachewatch's wire encoder
(``tracing/otlp_wire.encode_request``, bytes, then parsed into the request gRPC sends), on
batches of the spans an instrumented lookup makes, alternating in the same rounds (the
fastest round of each: the figure least disturbed by the machine's other work).

Then the whole export of a batch over OTLP/gRPC to a receiver in another process, through
the OTLP exporter and through cachewatch's (``pipeline.wire_otlp_exporter``).

    python bench/otlp_encode.py [--rounds 15] [--batch 512]
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import SpanLimits
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from cachewatch._version import __version__
from cachewatch.tracing.attributes import CACHE_HIT, CACHE_NAME, CACHE_OPERATION
from cachewatch.tracing.direct import DirectSpans, OwnTracerProvider
from cachewatch.tracing.otlp_wire import encode_request
from cachewatch.tracing.pipeline import wire_otlp_exporter
from cachewatch.tracing.sdk import build_resource
from instrument import otlp_receiver  # bench/instrument.py: the discarding receiver


class Keep(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[Any] = []

    def export(self, spans: Any) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def no_fallback(*args: object) -> None:
    raise SystemExit("a lookup span took the SDK's way")


def lookup_spans(count: int) -> list[Any]:
    """Spans as ``instrument()`` records them on cachewatch's own provider
    (``direct.DirectSpans``): a name, three attributes, the resource, the scope."""
    kept = Keep()
    provider = OwnTracerProvider(resource=build_resource({"service.name": "bench"}))
    provider.add_span_processor(SimpleSpanProcessor(kept))
    tracer = provider.get_tracer("cachewatch", __version__)
    direct = DirectSpans.for_tracer(provider, tracer, SpanLimits(), lambda: None, no_fallback)
    if direct is None:
        raise SystemExit("spans cannot be recorded directly here (OTEL_* limits set?)")
    for n in range(count):
        attributes = {CACHE_NAME: "bench", CACHE_OPERATION: "get", CACHE_HIT: n % 4 != 0}
        now = time.time_ns()
        direct.record("get bench", attributes, now, now + 900, root=True)
    return kept.spans


def per_span_us(work: Callable[[], object], spans: int) -> float:
    start = time.perf_counter_ns()
    work()
    return (time.perf_counter_ns() - start) / spans / 1000


def row(name: str, us: float, note: str = "") -> None:
    print(f"{name:52s} {us:8.2f} µs   {note}".rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=512, help="spans per export (the SDK's)")
    args = parser.parse_args()
    spans = lookup_spans(args.batch)
    if encode_request(spans) != encode_spans(spans).SerializeToString():
        raise SystemExit("the two encoders disagree")

    def library() -> object:
        return encode_spans(spans).SerializeToString()

    def wire() -> object:
        return ExportTraceServiceRequest.FromString(encode_request(spans)).SerializeToString()

    found: dict[str, list[float]] = {"library": [], "wire": []}
    for _ in range(args.rounds):
        found["library"].append(per_span_us(library, len(spans)))
        found["wire"].append(per_span_us(wire, len(spans)))
    library_us = min(found["library"])
    wire_us = min(found["wire"])
    print(f"encoding a batch of {len(spans)} lookup spans, per span (fastest of {args.rounds}):")
    row("exporter package: encode_spans + serialise", library_us)
    row("cachewatch: encode_request + parse + serialise", wire_us)
    print(f"{'ratio':52s} {wire_us / library_us:8.2f}")

    logging.getLogger("opentelemetry").setLevel(logging.ERROR)
    with otlp_receiver() as endpoint:
        exporters = {
            "OTLPSpanExporter": OTLPSpanExporter(endpoint=endpoint, insecure=True),
            "WireOTLPSpanExporter": wire_otlp_exporter()(endpoint=endpoint, insecure=True),
        }
        exported: dict[str, list[float]] = {name: [] for name in exporters}
        for exporter in exporters.values():  # the channel connects on the first export
            exporter.export(spans)
        for _ in range(args.rounds):
            for name, exporter in exporters.items():
                exported[name].append(per_span_us(lambda e=exporter: e.export(spans), len(spans)))
        for exporter in exporters.values():
            exporter.shutdown()
    sdk_us = min(exported["OTLPSpanExporter"])
    own_us = min(exported["WireOTLPSpanExporter"])
    print("exporting it over OTLP/gRPC to a local receiver, per span:")
    row("OTLPSpanExporter", sdk_us)
    row("WireOTLPSpanExporter (cachewatch's pipeline)", own_us)
    print(f"{'ratio':52s} {own_us / sdk_us:8.2f}")


if __name__ == "__main__":
    main()
