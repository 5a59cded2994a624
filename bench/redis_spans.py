"""Spans of redis-py commands: cachewatch's own (``instrument_redis()``) against
OpenTelemetry's redis instrumentation (``RedisInstrumentor.instrument_client``), on the same
GET of a 100-byte value from a redis-server on loopback started for this run, with spans
exported over OTLP/gRPC to a receiver in another process.

Prints the median µs per GET of each client, measured in alternating rounds of this run,
at 100% and at 1% sampling (roots), and the overhead of each over a plain client with
tracing off in the same rounds. docs/tracing.md gives the figures and the choice they led
to.

    python bench/redis_spans.py [--rounds 15] [--ops 1000]
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import statistics
from collections.abc import Callable

import redis
from opentelemetry.instrumentation.redis import RedisInstrumentor

import cachewatch
from cachewatch.tracing import spans
from instrument import otlp_receiver  # bench/instrument.py: the discarding receiver
from instrument_redis import mean_us, redis_server


def rounds_of(clients: dict[str, Callable[[], object]], ops: int, rounds: int) -> dict[str, float]:
    """Median µs per call of each client; the clients alternate within every round."""
    found: dict[str, list[float]] = {name: [] for name in clients}
    for _ in range(rounds):
        for name, call in clients.items():
            found[name].append(mean_us(call, ops))
    return {name: statistics.median(values) for name, values in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--ops", type=int, default=1000)
    args = parser.parse_args()
    logging.getLogger("opentelemetry").setLevel(logging.ERROR)
    caches = {"embedding_cache": "embedding:"}
    with redis_server() as port, otlp_receiver() as endpoint:
        plain = redis.Redis(port=port)
        plain.set("embedding:1", b"x" * 100)
        for label, sampler, arg in (
            ("100% sampled", "parentbased_always_on", ""),
            ("1% sampled", "parentbased_traceidratio", "0.01"),
        ):
            env = dict(os.environ)
            env.update(
                OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=endpoint,
                OTEL_TRACES_SAMPLER=sampler,
                OTEL_TRACES_SAMPLER_ARG=arg,
            )
            state = spans.setup_tracing(env, set_global=False)
            if state is None:
                raise SystemExit("tracing did not start")
            ours = cachewatch.instrument_redis(
                redis.Redis(port=port), caches, registry=cachewatch.CacheRegistry()
            )
            theirs = redis.Redis(port=port)
            RedisInstrumentor.instrument_client(theirs, tracer_provider=state.provider)
            try:
                figures = rounds_of(
                    {
                        "plain, no spans": functools.partial(plain.get, "embedding:1"),
                        "instrument_redis()": functools.partial(ours.get, "embedding:1"),
                        "RedisInstrumentor": functools.partial(theirs.get, "embedding:1"),
                    },
                    args.ops,
                    args.rounds,
                )
            finally:
                spans.shutdown_tracing()
                ours.close()
                theirs.close()
            base = figures["plain, no spans"]
            for name, us in figures.items():
                extra = f"   +{us - base:6.1f} µs" if name != "plain, no spans" else ""
                print(f"{label:13s} {name:20s} {us:8.1f} µs{extra}")
        plain.close()


if __name__ == "__main__":
    main()
