"""Load: many concurrent scrapers against a running cachewatch, as a fleet of Prometheus
servers (or a careless dashboard) would hit it.

For each target (the demo; ``cachewatch serve`` against a real redis-server when that command
exists), it starts the exporter as a child process, measures the latency of scrapes made one
at a time (the baseline, in this same run), then runs N concurrent scrapers for D seconds and
prints: scrapes, errors (target 0), p50/p99 latency and their ratio to the baseline, and the
exporter's RSS before and after the load (target growth <= 5 MiB), beside a control period of the
same length without load (the demo's caches fill on their own); then the same load again for a
third of the time, and the RSS change of that second round (a leak would repeat its growth).

    python bench/load.py [--scrapers 50] [--duration 30] [--targets demo,redis]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

LOOPBACK = "127.0.0.1"
MIB = 1024 * 1024
REQUEST = b"GET /metrics HTTP/1.1\r\nHost: cachewatch\r\nUser-Agent: bench-load\r\n\r\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def scrape(
    port: int, tally: Tally, conn: Connection | None, timeout: float = 10.0
) -> Connection | None:
    """One scrape over ``conn`` (opened if None), kept alive as Prometheus keeps it; returns
    the connection to reuse, or None after an error or when the server closes it."""
    start = time.perf_counter()
    try:
        if conn is None:
            conn = await asyncio.wait_for(asyncio.open_connection(LOOPBACK, port), timeout)
        reader, writer = conn
        writer.write(REQUEST)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        body = await asyncio.wait_for(reader.readexactly(length), timeout)
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
        tally.error(type(exc).__name__)
        if conn is not None:
            conn[1].close()
        return None
    if not head.startswith(b"HTTP/1.1 200") or b"cachewatch_build_info" not in body:
        tally.error(head[:12].decode("latin-1", "replace") or "empty")
    else:
        tally.latencies.append(time.perf_counter() - start)
    if b"connection: close" in head.lower():
        writer.close()
        return None
    return conn


async def scraper(port: int, tally: Tally, stop_at: float) -> None:
    conn: Connection | None = None
    while time.monotonic() < stop_at:
        conn = await scrape(port, tally, conn)
    if conn is not None:
        conn[1].close()


async def load(port: int, scrapers: int, duration: float) -> Tally:
    tally = Tally()
    stop_at = time.monotonic() + duration
    await asyncio.gather(*(scraper(port, tally, stop_at) for _ in range(scrapers)))
    return tally


async def sequential(port: int, count: int) -> Tally:
    tally = Tally()
    conn: Connection | None = None
    for _ in range(count):
        conn = await scrape(port, tally, conn)
    if conn is not None:
        conn[1].close()
    return tally


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_mib(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / MIB


@contextlib.contextmanager
def exporter(argv: list[str], port: int, workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = (workdir / "exporter.log").open("wb")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[int]:
    port = free_port()
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    argv = [binary, "--port", str(port), "--bind", LOOPBACK, "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(argv, cwd=workdir, stdout=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        client = socket.create_connection((LOOPBACK, port))
        # A few thousand keys in two prefixes, so the census has something to count.
        commands = b"".join(
            f"*3\r\n$3\r\nSET\r\n${len(k)}\r\n{k}\r\n$1\r\nv\r\n".encode()
            for k in (f"{p}:{i}" for p in ("embedding", "search") for i in range(5000))
        )
        client.sendall(commands)
        expected = b"+OK\r\n" * 10_000
        received = b""
        while len(received) < len(expected):
            received += client.recv(65536)
        client.close()
        yield port
    finally:
        process.terminate()
        process.wait(10)


def has_serve_command() -> bool:
    result = subprocess.run(
        [sys.executable, "-m", "cachewatch.cli", "serve", "--help"],
        capture_output=True,
        timeout=60,
    )
    return result.returncode == 0 and b"--redis.addr" in result.stdout


def run_target(name: str, argv: list[str], port: int, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp, exporter(argv, port, Path(tmp)) as process:
        warm = asyncio.run(sequential(port, 20))
        base = asyncio.run(sequential(port, args.baseline))
        if warm.errors or base.errors:
            print(f"{name}: errors before the load: {warm.errors} {base.errors}")
        # Control: the same time without load. The demo's caches fill and the trend windows
        # grow on their own; what load adds is the difference.
        idle_start = rss_mib(process.pid)
        time.sleep(args.duration)
        before = rss_mib(process.pid)
        tally = asyncio.run(load(port, args.scrapers, args.duration))
        time.sleep(1.0)  # let the last threads end before reading RSS
        after = rss_mib(process.pid)
        # The same load again: growth that repeats is a leak; growth that does not is the
        # one-off cost of serving that many connections at once (thread stacks, allocator).
        again = asyncio.run(load(port, args.scrapers, args.duration / 3))
        time.sleep(1.0)
        after_again = rss_mib(process.pid)
        alive = process.poll() is None
    scrapes = len(tally.latencies)
    errors = sum(tally.errors.values())
    base_p50 = statistics.median(base.latencies) * 1000
    p50 = quantile(tally.latencies, 0.50) * 1000 if scrapes else float("nan")
    p99 = quantile(tally.latencies, 0.99) * 1000 if scrapes else float("nan")
    print(f"== {name}: {args.scrapers} scrapers x {args.duration:g} s ==")
    print(f"  baseline (one scraper, {args.baseline} scrapes): p50 {base_p50:.2f} ms")
    print(f"  scrapes {scrapes} ({scrapes / args.duration:.0f}/s), errors {errors} (target 0)"
          + (f" {tally.errors}" if errors else ""))  # fmt: skip
    print(f"  latency p50 {p50:.2f} ms ({p50 / base_p50:.1f}x baseline), "
          f"p99 {p99:.2f} ms ({p99 / base_p50:.1f}x baseline)")  # fmt: skip
    growth = after - before
    idle_growth = before - idle_start
    verdict = "ok" if growth <= 5 else "over target"
    print(f"  RSS before {before:.1f} MiB, after {after:.1f} MiB, growth {growth:+.1f} MiB "
          f"(target <= 5 MiB: {verdict})")  # fmt: skip
    print(f"  control: the same {args.duration:g} s without load grew RSS {idle_growth:+.1f} MiB; "
          f"growth due to the load {growth - idle_growth:+.1f} MiB")  # fmt: skip
    print(f"  the same load again for {args.duration / 3:g} s: {len(again.latencies)} scrapes, "
          f"errors {sum(again.errors.values())}, RSS {after_again:.1f} MiB "
          f"({after_again - after:+.1f} MiB); exporter still running: {alive}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scrapers", type=int, default=50)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--baseline", type=int, default=100, help="sequential scrapes first")
    parser.add_argument("--targets", default="demo,redis")
    args = parser.parse_args()
    targets = set(args.targets.split(","))
    python = [sys.executable, "-m", "cachewatch.cli"]
    env_note = f"python {sys.version.split()[0]}, {os.cpu_count()} cores"
    print(f"bench/load.py: {env_note}; client: asyncio, one kept-alive connection per scraper")
    if "demo" in targets:
        port = free_port()
        argv = [*python, "demo", "--web.listen-address", f"{LOOPBACK}:{port}", "--log.level",
                "warn"]  # fmt: skip
        run_target("cachewatch demo", argv, port, args)
    if "redis" in targets:
        if not has_serve_command():
            print("== cachewatch serve: not available in this build (no 'serve --redis.addr') ==")
            return
        with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as redis_port:
            port = free_port()
            argv = [
                *python, "serve", "--redis.addr", f"redis://{LOOPBACK}:{redis_port}/0",
                "--redis.cache", "embedding=embedding:", "--redis.cache", "search=search:",
                "--web.listen-address", f"{LOOPBACK}:{port}", "--log.level", "warn",
            ]  # fmt: skip
            run_target("cachewatch serve (redis-server, 10,000 keys)", argv, port, args)


if __name__ == "__main__":
    main()
