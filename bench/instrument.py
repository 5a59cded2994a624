"""Hot-path cost of instrument(): a hit through the wrapper against a bare dict.get and
against the naive alternative (labels().inc() and labels().observe() on every get).

Prints the median ns per operation of each, measured in this run, and the ratios.
Targets: overhead over the bare get <= 500 ns; instrumented / naive <= 0.35. Also the cost
of one ``trace_cache_operation`` block around nothing (the wrapper of remote lookups).

Then the same hit with tracing on (spans exported over OTLP/gRPC to a receiver in another
process): at 1% sampling (target <= 1500 ns) and with every operation sampled (reported),
against the untraced hit measured above.

    python bench/instrument.py [--rounds 31] [--ops 200000] [--no-tracing]
"""

from __future__ import annotations

import argparse
import contextlib
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


def traced_hits(
    get: Callable[[], object], untraced_ns: float, ops: int, rounds: int
) -> dict[str, float]:
    """The same hit with tracing at 1% and at 100% sampling, exported to a real receiver."""
    logging.getLogger("opentelemetry").setLevel(logging.ERROR)
    results: dict[str, float] = {}
    with otlp_receiver() as endpoint:
        for label, sampler, arg, n, r in (
            ("tracing 1% sampled", "parentbased_traceidratio", "0.01", ops, rounds),
            ("tracing 100% sampled", "parentbased_always_on", "", max(1000, ops // 40), 11),
        ):
            env = dict(os.environ)
            env.update(
                OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=endpoint,
                OTEL_TRACES_SAMPLER=sampler,
                OTEL_TRACES_SAMPLER_ARG=arg,
            )
            if spans.setup_tracing(env, set_global=False) is None:
                raise SystemExit("tracing did not start")
            try:
                results[label] = median_ns(get, n, r)
            finally:
                spans.shutdown_tracing()
    for label, ns in results.items():
        print(f"{'instrument() .get hit, ' + label:34s} {ns:8.0f} ns", end="")
        print(f"   ratio to untraced {ns / untraced_ns:6.2f}", end="")
        print("   (target <= 1500 ns)" if "1%" in label else "")
    return results


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

    prom = CollectorRegistry()
    gets = Counter("naive_cache_gets", "gets", ["cache", "result"], registry=prom)
    latency = Histogram("naive_latency_seconds", "latency", ["cache", "operation"], registry=prom)

    def naive_get() -> object:
        start = time.perf_counter()
        value = data.get(key)
        gets.labels(cache="bench", result="hit" if value is not None else "miss").inc()
        latency.labels(cache="bench", operation="get").observe(time.perf_counter() - start)
        return value

    bound_hit = gets.labels(cache="bench", result="hit")
    bound_latency = latency.labels(cache="bench", operation="get")

    def prebound_get() -> object:
        start = time.perf_counter()
        value = data.get(key)
        bound_hit.inc()
        bound_latency.observe(time.perf_counter() - start)
        return value

    def bare() -> object:
        return data.get(key)

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
        "instrument() .get hit": median_ns(instrumented, args.ops, args.rounds),
        "instrument() [key] hit": median_ns(instrumented_getitem, args.ops, args.rounds),
        "trace_cache_operation() hit": median_ns(operation, args.ops // 10, args.rounds),
        "naive labels().inc()+observe()": median_ns(naive_get, args.ops, args.rounds),
        "naive pre-bound inc()+observe()": median_ns(prebound_get, args.ops, args.rounds),
    }
    for name, ns in results.items():
        print(f"{name:34s} {ns:8.0f} ns")
    bare_ns = results["bare dict.get"]
    hit_ns = results["instrument() .get hit"]
    print(f"{'overhead over bare get':34s} {hit_ns - bare_ns:8.0f} ns   (target <= 500)")
    print(
        f"{'ratio instrumented / naive':34s} "
        f"{hit_ns / results['naive labels().inc()+observe()']:8.3f}      (target <= 0.35)"
    )
    print(
        f"{'ratio instrumented / pre-bound':34s} "
        f"{hit_ns / results['naive pre-bound inc()+observe()']:8.3f}"
    )
    if not args.no_tracing:
        traced_hits(instrumented, hit_ns, args.ops, args.rounds)


if __name__ == "__main__":
    main()
