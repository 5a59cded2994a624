"""Faults: Redis down at start, killed, restarted, stalled. /metrics always answers in time,
says redis_up 0, and comes back by itself; logs do not flood."""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from cachewatch.config import RedisSettings
from cachewatch.config.redisurl import parse_redis_address
from cachewatch.sources.redis import RedisSource

from .redisdata import client
from .scrape import Samples, samples, value
from .servers import RedisServer, free_port
from .test_redis import served

TIMEOUT = 0.5
ANSWER_WITHIN = 2 * TIMEOUT + 1.0  # connect + socket timeout, plus the scrape itself


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="cachewatch-faults-") as tmp:
        yield Path(tmp)


def _source(port: int) -> RedisSource:
    settings = RedisSettings(
        address=parse_redis_address(f"redis://127.0.0.1:{port}/0"),
        connect_timeout=TIMEOUT,
        socket_timeout=TIMEOUT,
    )
    return RedisSource(settings, backoff_initial=0.1, backoff_max=0.4, start_census=False)


def _timed_scrape(port: int) -> tuple[Samples, float]:
    start = time.monotonic()
    found = samples(port)
    return found, time.monotonic() - start


def _down(found: Samples) -> bool:
    return (
        value(found, "redis_up") == 0 and value(found, "cachewatch_source_up", source="redis") == 0
    )


def _up(found: Samples) -> bool:
    return (
        value(found, "redis_up") == 1 and value(found, "cachewatch_source_up", source="redis") == 1
    )


def _wait_until(port: int, condition: Callable[[Samples], bool], within: float = 10.0) -> float:
    """Scrape every 0.1 s until ``condition`` holds; returns how long it took."""
    start = time.monotonic()
    for _ in range(int(within / 0.1)):
        found, took = _timed_scrape(port)
        assert took < ANSWER_WITHIN
        if condition(found):
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"condition not reached within {within}s")


def test_down_at_start_then_comes_up(workdir: Path) -> None:
    port = free_port()
    with served(_source(port)) as http_port:
        found, took = _timed_scrape(http_port)
        assert took < ANSWER_WITHIN
        assert _down(found)
        health = requests.get(f"http://127.0.0.1:{http_port}/health", timeout=5)
        assert health.status_code == 503
        assert health.json()["checks"]["source:redis"]["ok"] is False
        server = RedisServer(workdir, port=port).start()
        try:
            assert _wait_until(http_port, _up) < 5
        finally:
            server.stop()


def test_killed_mid_run_then_restarted(workdir: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cachewatch")
    server = RedisServer(workdir).start()
    try:
        with served(_source(server.port)) as http_port:
            assert _up(samples(http_port))
            server.kill()
            _wait_until(http_port, _down)
            for _ in range(30):  # a burst of failing scrapes
                found, took = _timed_scrape(http_port)
                assert _down(found) and took < ANSWER_WITHIN
            server.start()
            _wait_until(http_port, _up, within=5)
    finally:
        server.stop()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert 1 <= len(warnings) <= 2, [r.getMessage() for r in warnings]
    assert any("is back" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "stall",
    [("DEBUG", "SLEEP", "2.5"), ("CLIENT", "PAUSE", "2500", "ALL")],
    ids=["debug-sleep", "client-pause"],
)
def test_stalled_redis(workdir: Path, stall: tuple[str, ...]) -> None:
    server = RedisServer(workdir, extra=["--enable-debug-command", "yes"]).start()
    try:
        with served(_source(server.port)) as http_port:
            assert _up(samples(http_port))
            staller = client(server)
            thread = threading.Thread(target=staller.execute_command, args=stall, daemon=True)
            thread.start()
            time.sleep(0.2)
            found, took = _timed_scrape(http_port)
            assert _down(found), "a stalled Redis is reported down"
            assert took < ANSWER_WITHIN
            thread.join(10)
            _wait_until(http_port, _up, within=6)
    finally:
        server.stop()


def test_poll_never_raises_on_garbage_server(workdir: Path) -> None:
    """Something that is not Redis on the port: down, not a crash."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]

    def answer() -> None:
        for _ in range(20):
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" + b"\x00" * 100)
            conn.close()

    threading.Thread(target=answer, daemon=True).start()
    source = _source(port)
    try:
        for _ in range(3):
            snapshot = source.poll()
            assert not snapshot.up and snapshot.error
            time.sleep(0.45)
    finally:
        source.close()
        listener.close()
