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


def per_call_ns(operation: Callable[[], object], ops: int) -> float:
    """Mean ns per call of ``operation`` over ``ops`` calls, minus the cost of the empty loop."""

    def loop(fn: Callable[[], object]) -> float:
        start = time.perf_counter_ns()
        for _ in range(ops):
            fn()
        return (time.perf_counter_ns() - start) / ops

    def nothing() -> None:
        return None

    empty = loop(nothing)
    return loop(operation) - empty


def median_ns(operation: Callable[[], object], ops: int, rounds: int) -> float:
    """Median over rounds of the mean ns per call, minus the cost of the empty loop."""
    return statistics.median(per_call_ns(operation, ops) for _ in range(rounds))


class Rounds:
    """Each kind's ns per call in every round, the kinds run one after the other within a
    round: all of them see the same state of the machine.

    This machine (two shared vCPUs) runs for seconds at a time at one of two speeds: a bare
    ``dict.get`` loop reads 67 ns, then 122 ns, then 67 ns again. Kinds measured in rounds of
    their own landed in different windows (the counting proxy read 96 ns in one run and
    159 ns in the next). Interleaved, a round's differences are of one window; the best round
    of each kind is the machine at its own speed, as ``timeit`` reports (its documentation:
    higher values "are typically not caused by variability in Python's speed, but by other
    processes interfering"), and the median is printed beside it."""

    def __init__(self, kinds: dict[str, tuple[Callable[[], object], int]], rounds: int) -> None:
        self.ns: dict[str, list[float]] = {name: [] for name in kinds}
        for _ in range(rounds):
            for name, (operation, ops) in kinds.items():
                self.ns[name].append(per_call_ns(operation, ops))

    def best(self, name: str) -> float:
        return min(self.ns[name])

    def median(self, name: str) -> float:
        return statistics.median(self.ns[name])

    def difference(self, name: str, base: str) -> tuple[float, float]:
        """``name`` over ``base``: best round against best round, and the median of the
        rounds' own differences."""
        rounds = [a - b for a, b in zip(self.ns[name], self.ns[base], strict=True)]
        return self.best(name) - self.best(base), statistics.median(rounds)


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


def row(name: str, best: float, median: float, note: str = "") -> None:
    print(f"{name:44s} {best:9.0f} ns {median:9.0f} ns   {note}".rstrip())


def ratio_row(name: str, best: float, median: float, note: str) -> None:
    print(f"{name:44s} {best:9.2f}    {median:9.2f}      {note}")


def traced(
    get: Callable[[], object], untraced_ns: tuple[float, float], ops: int, rounds: int
) -> None:
    """The hit at 1% sampling, and one sampled lookup against an SDK span alone (untraced:
    the untraced hit's best and median)."""
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
            one_pct = Rounds({"1%": (get, ops)}, rounds)
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

        n = max(500, ops // 100)
        try:  # interleaved: the export thread hits both
            spanned = Rounds({"anchor": (anchor, n), "sampled": (get, n)}, max(11, rounds // 2))
        finally:
            spans.shutdown_tracing()
    span = spanned.best("anchor"), spanned.median("anchor")
    sampled = spanned.best("sampled"), spanned.median("sampled")
    one = one_pct.best("1%"), one_pct.median("1%")
    floor = untraced_ns[0] + span[0] / 100, untraced_ns[1] + span[1] / 100
    row(
        "instrument() .get hit, tracing 1% sampled", *one, f"(target <= {TRACED_1PCT_TARGET_NS} ns)"
    )
    row("  floor: untraced hit + 1% of an SDK span", *floor)
    ratio_row(
        "  ratio to that floor",
        one[0] / floor[0],
        one[1] / floor[1],
        f"(target <= {TRACED_1PCT_FLOOR_RATIO:.2f})",
    )
    row("one sampled lookup (span + exemplar)", *sampled, f"(target <= {SAMPLED_TARGET_NS} ns)")
    row("  anchor: SDK span alone, same attributes", *span)
    ratio_row(
        "  ratio to the anchor",
        sampled[0] / span[0],
        sampled[1] / span[1],
        f"(target <= {SAMPLED_ANCHOR_RATIO:.3f})",
    )


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

    measured = Rounds(
        {
            "bare dict.get": (bare, args.ops),
            "bare dict[key]": (bare_getitem, args.ops),
            "floor: a proxy that only counts, .get": (floor, args.ops),
            "instrument() .get hit": (instrumented, args.ops),
            "instrument() [key] hit": (instrumented_getitem, args.ops),
            "trace_cache_operation() hit": (operation, args.ops // 10),
            "naive labels().inc()+observe()": (naive_get, args.ops),
        },
        args.rounds,
    )
    print(f"{'':44s} {'best':>9s}    {'median':>9s}    (of {args.rounds} interleaved rounds)")
    for name in measured.ns:
        row(name, measured.best(name), measured.median(name))
    target = f"(target <= {OVERHEAD_TARGET_NS} ns)"
    get_over = measured.difference("instrument() .get hit", "bare dict.get")
    item_over = measured.difference("instrument() [key] hit", "bare dict[key]")
    floor_over = measured.difference("floor: a proxy that only counts, .get", "bare dict.get")
    row("overhead of .get over bare dict.get", *get_over, target)
    row("overhead of [key] over bare dict[key]", *item_over, target)
    row("  floor's overhead over bare dict.get", *floor_over)
    ratio = measured.best("instrument() .get hit") / measured.best("naive labels().inc()+observe()")
    print(f"{'ratio instrumented / naive':44s} {ratio:9.3f}")
    if not args.no_tracing:
        untraced = measured.best("instrument() .get hit"), measured.median("instrument() .get hit")
        traced(instrumented, untraced, args.ops, args.rounds)


if __name__ == "__main__":
    main()
