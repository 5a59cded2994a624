"""Hot-path cost of instrument(): a hit through the wrapper against a bare lookup, against
the floor (a Python proxy that only counts) and against the naive alternative (labels().inc()
and labels().observe() on every get); one ``trace_cache_operation`` block around nothing.

Then tracing, spans exported over OTLP/gRPC to a receiver in another process: the hit at 1%
sampling against its floor (the untraced hit plus 1% of an SDK span), and one sampled lookup
(span + exemplar) against the anchor, an OpenTelemetry SDK span with the same attributes on
the same provider and batch processor, measured in the same rounds.

Each target is printed beside its figure. The machine is shared: absolute figures are
noisy, the ratios measured in the same run are what to read.

    python bench/instrument.py [--rounds 31] [--ops 200000] [--no-tracing]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram

import cachewatch
from cachewatch.tracing import spans
from cachewatch.tracing.attributes import CACHE_HIT, CACHE_NAME, CACHE_OPERATION

# A discarding OTLP/gRPC trace receiver, run in its own process so that receiving costs this
# process nothing (exporting, i.e. serialising and sending, still happens here).
RECEIVER = """
import sys, time
from concurrent import futures
import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

class Discard(trace_service_pb2_grpc.TraceServiceServicer):
    def Export(self, request, context):
        return trace_service_pb2.ExportTraceServiceResponse()

server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Discard(), server)
server.add_insecure_port("127.0.0.1:" + sys.argv[1])
server.start()
time.sleep(float(sys.argv[2]))
"""


def median_ns(operation: Callable[[], object], ops: int, rounds: int) -> float:
    """Median over rounds of the mean ns per call, minus the cost of the empty loop."""

    def loop(fn: Callable[[], object]) -> float:
        start = time.perf_counter_ns()
        for _ in range(ops):
            fn()
        return (time.perf_counter_ns() - start) / ops

    def nothing() -> None:
        return None

    results = []
    for _ in range(rounds):
        empty = loop(nothing)
        results.append(loop(operation) - empty)
    return statistics.median(results)


@contextlib.contextmanager
def otlp_receiver(lifetime: float = 900.0) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port), str(lifetime)])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


class CountingProxy:
    """The floor: the least a Python-level wrapper can do, a lookup and a counter bump."""

    __slots__ = ("_get", "_hits", "_misses")

    def __init__(self, data: dict[str, int]) -> None:
        self._get = data.get
        self._hits = itertools.count()
        self._misses = itertools.count()

    def get(self, key: str, default: object = None) -> object:
        value = self._get(key, _MISSING)
        if value is _MISSING:
            next(self._misses)
            return default
        next(self._hits)
        return value


_MISSING = object()
OVERHEAD_TARGET_NS = 100
TRACED_1PCT_TARGET_NS = 400
TRACED_1PCT_FLOOR_RATIO = 400 / 350
"""The issue's figures: 400 ns against a floor of about 350 ns on its machine."""
SAMPLED_TARGET_NS = 18_000
SAMPLED_ANCHOR_RATIO = 18 / 16
"""18 µs against an SDK span of about 16 µs on the machine the targets were set on."""


def row(name: str, ns: float, note: str = "") -> None:
    print(f"{name:44s} {ns:9.0f} ns   {note}".rstrip())


def traced(get: Callable[[], object], untraced_ns: float, ops: int, rounds: int) -> None:
    """The hit at 1% sampling, and one sampled lookup against an SDK span alone."""
    logging.getLogger("opentelemetry").setLevel(logging.ERROR)
    with otlp_receiver() as endpoint:
        env = dict(os.environ)
        env.update(
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=endpoint,
            OTEL_TRACES_SAMPLER="parentbased_traceidratio",
            OTEL_TRACES_SAMPLER_ARG="0.01",
        )
        state = spans.setup_tracing(env, set_global=False)
        if state is None:
            raise SystemExit("tracing did not start")
        try:
            one_pct = median_ns(get, ops, rounds)
        finally:
            spans.shutdown_tracing()

        env.update(OTEL_TRACES_SAMPLER="parentbased_always_on", OTEL_TRACES_SAMPLER_ARG="")
        state = spans.setup_tracing(env, set_global=False)
        if state is None:
            raise SystemExit("tracing did not start")
        tracer = state.tracer
        attributes = {CACHE_NAME: "bench", CACHE_OPERATION: "get", CACHE_HIT: True}

        def anchor() -> None:
            tracer.start_span("get bench", attributes=dict(attributes)).end()

        sampled: list[float] = []
        anchors: list[float] = []
        n = max(500, ops // 100)
        try:
            for _ in range(max(11, rounds // 2)):  # interleaved: the export thread hits both
                anchors.append(median_ns(anchor, n, 1))
                sampled.append(median_ns(get, n, 1))
        finally:
            spans.shutdown_tracing()
    span_ns = statistics.median(anchors)
    sampled_ns = statistics.median(sampled)
    floor = untraced_ns + span_ns / 100
    row(
        "instrument() .get hit, tracing 1% sampled",
        one_pct,
        f"(target <= {TRACED_1PCT_TARGET_NS} ns)",
    )
    row("  floor: untraced hit + 1% of an SDK span", floor)
    ratio = one_pct / floor
    print(
        f"{'  ratio to that floor':44s} {ratio:9.2f}      (target <= {TRACED_1PCT_FLOOR_RATIO:.2f})"
    )
    row("one sampled lookup (span + exemplar)", sampled_ns, f"(target <= {SAMPLED_TARGET_NS} ns)")
    row("  anchor: SDK span alone, same attributes", span_ns)
    ratio = sampled_ns / span_ns
    print(f"{'  ratio to the anchor':44s} {ratio:9.2f}      (target <= {SAMPLED_ANCHOR_RATIO:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--ops", type=int, default=200_000)
    parser.add_argument("--no-tracing", action="store_true", help="skip the traced figures")
    args = parser.parse_args()

    data = {f"key-{i}": i for i in range(1000)}
    key = "key-7"
    registry = cachewatch.CacheRegistry()
    wrapped = cachewatch.instrument(dict(data), "bench", registry=registry)
    proxy = CountingProxy(data)

    prom = CollectorRegistry()
    gets = Counter("naive_cache_gets", "gets", ["cache", "result"], registry=prom)
    latency = Histogram("naive_latency_seconds", "latency", ["cache", "operation"], registry=prom)

    def naive_get() -> object:
        start = time.perf_counter()
        value = data.get(key)
        gets.labels(cache="bench", result="hit" if value is not None else "miss").inc()
        latency.labels(cache="bench", operation="get").observe(time.perf_counter() - start)
        return value

    def bare() -> object:
        return data.get(key)

    def bare_getitem() -> object:
        return data[key]

    def floor() -> object:
        return proxy.get(key)

    def instrumented() -> object:
        return wrapped.get(key)

    def instrumented_getitem() -> object:
        return wrapped[key]

    def operation() -> object:
        with cachewatch.trace_cache_operation("get", "remote", registry=registry) as op:
            op.hit()
        return op

    results = {
        "bare dict.get": median_ns(bare, args.ops, args.rounds),
        "bare dict[key]": median_ns(bare_getitem, args.ops, args.rounds),
        "floor: a proxy that only counts, .get": median_ns(floor, args.ops, args.rounds),
        "instrument() .get hit": median_ns(instrumented, args.ops, args.rounds),
        "instrument() [key] hit": median_ns(instrumented_getitem, args.ops, args.rounds),
        "trace_cache_operation() hit": median_ns(operation, args.ops // 10, args.rounds),
        "naive labels().inc()+observe()": median_ns(naive_get, args.ops, args.rounds),
    }
    for name, ns in results.items():
        row(name, ns)
    get_over = results["instrument() .get hit"] - results["bare dict.get"]
    item_over = results["instrument() [key] hit"] - results["bare dict[key]"]
    floor_over = results["floor: a proxy that only counts, .get"] - results["bare dict.get"]
    row("overhead of .get over bare dict.get", get_over, f"(target <= {OVERHEAD_TARGET_NS} ns)")
    row("overhead of [key] over bare dict[key]", item_over, f"(target <= {OVERHEAD_TARGET_NS} ns)")
    row("  floor's overhead over bare dict.get", floor_over)
    ratio = results["instrument() .get hit"] / results["naive labels().inc()+observe()"]
    print(f"{'ratio instrumented / naive':44s} {ratio:9.3f}")
    if not args.no_tracing:
        traced(instrumented, results["instrument() .get hit"], args.ops, args.rounds)


if __name__ == "__main__":
    main()
