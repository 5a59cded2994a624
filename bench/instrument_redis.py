"""Cost of instrument_redis(): a GET through an instrumented redis-py client against the same
GET through a plain client, both to a redis-server on loopback started for this run.

Prints the median µs per GET of each, measured in alternating rounds of this run, and the
median of the paired differences (the overhead).

    python bench/instrument_redis.py [--rounds 31] [--ops 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator

import redis

import cachewatch


@contextlib.contextmanager
def redis_server() -> Iterator[int]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as workdir:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", workdir],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                    break
                time.sleep(0.05)
            yield port
        finally:
            process.terminate()
            process.wait(10)


def mean_us(operation: Callable[[], object], ops: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(ops):
        operation()
    return (time.perf_counter_ns() - start) / ops / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--ops", type=int, default=2000)
    args = parser.parse_args()
    with redis_server() as port:
        plain = redis.Redis(port=port)
        watched = cachewatch.instrument_redis(
            redis.Redis(port=port),
            {"embedding_cache": "embedding:", "search_cache": "search:"},
            registry=cachewatch.CacheRegistry(),
        )
        plain.set("embedding:1", b"x" * 100)
        plain_rounds, watched_rounds, differences = [], [], []
        for _ in range(args.rounds):  # alternate, so that the machine's noise hits both alike
            plain_us = mean_us(lambda: plain.get("embedding:1"), args.ops)
            watched_us = mean_us(lambda: watched.get("embedding:1"), args.ops)
            plain_rounds.append(plain_us)
            watched_rounds.append(watched_us)
            differences.append(watched_us - plain_us)
        plain.close()
        watched.close()
    plain_us = statistics.median(plain_rounds)
    watched_us = statistics.median(watched_rounds)
    print(f"{'plain GET':20s} {plain_us:8.1f} µs")
    print(f"{'instrumented GET':20s} {watched_us:8.1f} µs")
    overhead = statistics.median(differences)
    print(f"{'overhead (paired)':20s} {overhead:8.1f} µs   ratio {watched_us / plain_us:.3f}")


if __name__ == "__main__":
    main()
