"""Redis killed, restarted and paused while ten scrapers hammer a real ``cachewatch serve``:
every scrape answers 200 within the timeouts, redis_up follows Redis, the exporter survives
and stops cleanly, and its log does not flood."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .redisdata import client
from .servers import RedisServer, free_port, wait_for_port

SCRAPERS = 10
ANSWER_WITHIN = 3.0  # connect 0.5 s + socket 0.5 s + a loaded 2-core machine


@dataclass
class Watch:
    """What the scrapers saw, in order."""

    statuses: list[int] = field(default_factory=list)
    slowest: float = 0.0
    up: list[tuple[float, float]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def saw_up_since(self, since: float, value: float) -> bool:
        with self.lock:
            return any(t >= since and v == value for t, v in self.up)


def scrape_until(port: int, stop: threading.Event, watch: Watch) -> None:
    session = requests.Session()
    while not stop.is_set():
        start = time.monotonic()
        try:
            response = session.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        except requests.RequestException as exc:
            with watch.lock:
                watch.failures.append(type(exc).__name__)
            continue
        took = time.monotonic() - start
        up = next(
            (float(line.split()[1]) for line in response.text.splitlines()
             if line.startswith("redis_up ")),
            -1.0,
        )  # fmt: skip
        with watch.lock:
            watch.statuses.append(response.status_code)
            watch.slowest = max(watch.slowest, took)
            watch.up.append((time.monotonic(), up))


def wait_for(condition: object, within: float) -> float:
    start = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - start < within, f"not reached within {within}s"
        time.sleep(0.05)
    return time.monotonic() - start


def test_kill_restart_and_pause_under_concurrent_scrapes() -> None:
    with tempfile.TemporaryDirectory(prefix="cachewatch-load-faults-") as tmp:
        redis = RedisServer(Path(tmp), extra=["--enable-debug-command", "yes"]).start()
        port = free_port()
        exporter = subprocess.Popen(
            [sys.executable, "-m", "cachewatch.cli", "serve", "--redis.addr", redis.url,
             "--redis.cache", "users=user:", "--redis.connect-timeout", "0.5s",
             "--redis.socket-timeout", "0.5s", "--web.listen-address", f"127.0.0.1:{port}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        stop = threading.Event()
        watch = Watch()
        threads = [
            threading.Thread(target=scrape_until, args=(port, stop, watch)) for _ in range(SCRAPERS)
        ]
        try:
            wait_for_port(port, timeout=30)
            for thread in threads:
                thread.start()
            wait_for(lambda: watch.saw_up_since(0, 1.0), within=10)

            killed = time.monotonic()
            redis.kill()
            wait_for(lambda: watch.saw_up_since(killed, 0.0), within=5)
            time.sleep(1.0)  # a second of scrapes against a dead Redis

            restarted = time.monotonic()
            redis.start()
            recovery = wait_for(lambda: watch.saw_up_since(restarted, 1.0), within=20)

            paused = time.monotonic()
            staller = client(redis)
            staller.execute_command("CLIENT", "PAUSE", "1500", "ALL")
            time.sleep(1.6)
            wait_for(lambda: watch.saw_up_since(paused + 1.6, 1.0), within=20)
            assert exporter.poll() is None, "the exporter died"
        finally:
            stop.set()
            for thread in threads:
                if thread.is_alive():
                    thread.join(15)
            exporter.send_signal(signal.SIGTERM)
            try:
                out, err = exporter.communicate(timeout=10)
            finally:
                redis.stop()
    assert exporter.returncode == 0, err
    assert "cachewatch stopped" in out
    assert watch.failures == []
    assert len(watch.statuses) > 100
    assert set(watch.statuses) == {200}
    assert watch.slowest < ANSWER_WITHIN, f"slowest scrape {watch.slowest:.2f}s"
    assert recovery < 20
    assert "Traceback" not in err
    warnings = [line for line in err.splitlines() if "level=warn" in line]
    assert len(warnings) <= 6, warnings  # one per outage, not one per scrape
