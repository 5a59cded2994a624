"""INFO commands per minute that a Redis server receives from ``cachewatch serve``.

Starts redis-server on loopback with a few hundred ``session:N`` keys, ``cachewatch serve``
watching it (default settings: the sampler polls every 15 s) and a real Prometheus
(``/usr/bin/prometheus``) scraping cachewatch every 15 s. Once Prometheus's first scrape has
succeeded, reads Redis's own ``INFO commandstats`` (``cmdstat_info`` calls) before and after
``--minutes`` minutes, and prints the INFO calls per minute, the scrapes Prometheus made in
that window (``count_over_time(up{job="cachewatch"}[...])``) and the INFO calls per scrape.

    .venv/bin/python bench/info_calls.py [--minutes 2]

Only cachewatch's CLI is used (``python -m cachewatch.cli serve``), nothing is imported from
the package, so the same script measures the code before and after a restructuring. Everything
listens on 127.0.0.1 and runs in a temporary directory that is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import redis
import requests

PROMETHEUS = "/usr/bin/prometheus"
SCRAPE_INTERVAL = 15  # seconds, Prometheus's; cachewatch's sampler runs at its default (15 s)
JOB = "cachewatch"
CACHE_PREFIX = "session:"
STARTUP_TIMEOUT = 30.0
FIRST_SCRAPE_TIMEOUT = 90.0
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within STOP_TIMEOUT."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_TIMEOUT)


@contextlib.contextmanager
def process(
    argv: Sequence[str], port: int, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` (output to ``log``) until the block ends; yields once it listens."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
        )
    try:
        try:
            wait_for_port(port, proc, Path(argv[0]).name, STARTUP_TIMEOUT)
        except RuntimeError as exc:
            tail = log.read_text(errors="replace").splitlines()[-20:]
            raise RuntimeError("\n".join([str(exc), f"last lines of {log.name}:", *tail])) from None
        yield proc
    finally:
        stop(proc)


def cachewatch_env() -> dict[str, str]:
    """This environment without cachewatch's settings variables, so serve runs on defaults."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CACHEWATCH_", "CACHE_"))
    }


def prometheus_config(path: Path, target_port: int) -> None:
    path.write_text(
        "global:\n"
        f"  scrape_interval: {SCRAPE_INTERVAL}s\n"
        "  scrape_timeout: 10s\n"
        "scrape_configs:\n"
        f"  - job_name: {JOB}\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{target_port}']\n"
    )


def wait_for_first_scrape(session: requests.Session, api: str, timeout: float) -> None:
    """Until Prometheus reports the cachewatch target up, i.e. a scrape has succeeded."""
    deadline = time.monotonic() + timeout
    health = "none"
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException, ValueError):
            reply = session.get(f"{api}/targets", timeout=HTTP_TIMEOUT).json()
            targets = [t for t in reply["data"]["activeTargets"] if t["labels"]["job"] == JOB]
            health = targets[0]["health"] if targets else "none"
            if health == "up":
                return
        time.sleep(0.5)
    raise RuntimeError(f"Prometheus's {JOB} target not up after {timeout:.0f} s ({health})")


def scrapes_in(session: requests.Session, api: str, end: float, seconds: float) -> int:
    """Scrapes of the cachewatch job with timestamps in the ``seconds`` before ``end``."""
    query = f'count_over_time(up{{job="{JOB}"}}[{round(seconds * 1000)}ms])'
    reply = session.get(
        f"{api}/query", params={"query": query, "time": f"{end:.3f}"}, timeout=HTTP_TIMEOUT
    ).json()
    if reply.get("status") != "success":
        raise RuntimeError(f"Prometheus query {query!r} failed: {reply}")
    result = reply["data"]["result"]
    return int(float(result[0]["value"][1])) if result else 0


def info_calls(conn: redis.Redis) -> int:
    """INFO calls so far, by Redis's own accounting (this call not yet included)."""
    stats: dict[str, Any] = conn.info("commandstats")
    return int(stats.get("cmdstat_info", {}).get("calls", 0))


def fill(conn: redis.Redis, keys: int) -> None:
    pipe = conn.pipeline(transaction=False)
    for i in range(keys):
        pipe.set(f"{CACHE_PREFIX}{i}", "v" * 32)
    pipe.execute()


def measure(conn: redis.Redis, prometheus_port: int, minutes: float) -> tuple[int, float, int]:
    """INFO calls (net of our own), seconds elapsed and Prometheus scrapes in the window."""
    api = f"http://127.0.0.1:{prometheus_port}/api/v1"
    with requests.Session() as session:
        wait_for_first_scrape(session, api, FIRST_SCRAPE_TIMEOUT)
        before = info_calls(conn)
        started = time.monotonic()
        time.sleep(minutes * 60)
        after = info_calls(conn)
        elapsed = time.monotonic() - started
        end = time.time()
        # Let Prometheus commit a scrape that started just before ``end``.
        time.sleep(2)
        scrapes = scrapes_in(session, api, end, elapsed)
    # ``after`` counts our first INFO commandstats (``before`` did not count itself).
    return after - before - 1, elapsed, scrapes


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds the with blocks: children stopped, temp dir gone


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0, help="window length (default: 2)")
    parser.add_argument("--keys", type=int, default=500, help="session:N keys (default: 500)")
    args = parser.parse_args()
    if args.minutes <= 0:
        parser.error("--minutes must be positive")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    redis_server = shutil.which("redis-server") or "/usr/bin/redis-server"

    with tempfile.TemporaryDirectory(prefix="cachewatch-bench-info-") as tmp:
        workdir = Path(tmp)
        redis_port, cw_port, prom_port = free_port(), free_port(), free_port()
        redis_argv = [redis_server, "--port", str(redis_port), "--bind", "127.0.0.1",
                      "--save", "", "--appendonly", "no", "--dir", tmp]  # fmt: skip
        with process(redis_argv, redis_port, workdir / "redis.log"):
            url = f"redis://127.0.0.1:{redis_port}/0"
            conn = redis.Redis.from_url(url, socket_timeout=30)
            try:
                fill(conn, args.keys)
                cw_argv = [sys.executable, "-m", "cachewatch.cli", "serve", "--redis.addr", url,
                           "--web.listen-address", f"127.0.0.1:{cw_port}",
                           "--redis.cache", f"sessions={CACHE_PREFIX}"]  # fmt: skip
                config = workdir / "prometheus.yml"
                prometheus_config(config, cw_port)
                prom_argv = [PROMETHEUS, f"--config.file={config}",
                             f"--storage.tsdb.path={workdir / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"]  # fmt: skip
                with (
                    process(cw_argv, cw_port, workdir / "cachewatch.log", cachewatch_env()),
                    process(prom_argv, prom_port, workdir / "prometheus.log"),
                ):
                    calls, elapsed, scrapes = measure(conn, prom_port, args.minutes)
            finally:
                conn.close()

    per_minute = calls / elapsed * 60
    scrapes_per_minute = scrapes / elapsed * 60
    print(f"window: {elapsed:.1f} s; Prometheus scrape_interval {SCRAPE_INTERVAL}s, "
          "cachewatch sample interval: its default")  # fmt: skip
    print(f"INFO calls: {calls} ({per_minute:.2f} per minute)")
    print(f"Prometheus scrapes of cachewatch: {scrapes} ({scrapes_per_minute:.2f} per minute)")
    if scrapes:
        print(f"INFO calls per scrape: {calls / scrapes:.2f}")
    else:
        print("INFO calls per scrape: n/a (no scrapes in the window)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
