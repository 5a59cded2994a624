"""Hot-path cost of instrument(): a hit through the wrapper against a bare dict.get and
against the naive alternative (labels().inc() and labels().observe() on every get).

Prints the median ns per operation of each, measured in this run, and the ratios.
Targets: overhead over the bare get <= 500 ns; instrumented / naive <= 0.35.

    python bench/instrument.py [--rounds 31] [--ops 200000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram

import cachewatch


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--ops", type=int, default=200_000)
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

    results = {
        "bare dict.get": median_ns(bare, args.ops, args.rounds),
        "instrument() .get hit": median_ns(instrumented, args.ops, args.rounds),
        "instrument() [key] hit": median_ns(instrumented_getitem, args.ops, args.rounds),
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


if __name__ == "__main__":
    main()
