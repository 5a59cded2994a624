"""The analysis in every mode: embedded (settings from the environment) and the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from typing import Any

import requests

from cachewatch.config import Config
from cachewatch.demo import demo_analysis_config

from .servers import LOOPBACK, RedisServer, free_port, wait_for_port

EMBEDDED = textwrap.dedent(
    """
    import json, time, requests
    import cachewatch
    cache = cachewatch.instrument({}, "emb")
    server = cachewatch.start_http_server(0)
    sampler = cachewatch.embedded_exporter().analysis.sampler
    deadline, ratio = time.monotonic() + 20, None
    while time.monotonic() < deadline and ratio is None:
        for i in range(200):
            if cache.get(i % 10) is None:
                cache[i % 10] = i
        time.sleep(0.1)
        text = requests.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5).text
        wanted = 'cachewatch_cache_hit_ratio{cache="emb"}'
        lines = [line for line in text.splitlines() if line.startswith(wanted)]
        ratio = float(lines[0].split()[-1]) if lines else None
    alerts = requests.get(f"http://127.0.0.1:{server.port}/alerts", timeout=5).json()
    print(json.dumps({
        "interval": sampler.interval, "daemon": sampler._thread.daemon, "ratio": ratio,
        "memory_threshold": [d["thresholds"] for d in alerts["definitions"]
                             if d["alertname"] == "CacheMemoryHigh"][0][0]["value"],
    }))
    # no close(): the daemon sampler thread must not keep the process alive
    """
)


def test_embedded_mode_runs_the_analysis_with_settings_from_the_environment() -> None:
    env = {
        **os.environ,
        "CACHEWATCH_SAMPLE_INTERVAL": "200ms",
        "CACHE_MEMORY_WARNING_THRESHOLD_MB": "123",
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", EMBEDDED], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["interval"] == 0.2 and report["daemon"] is True
    assert report["ratio"] is not None and report["ratio"] > 0.9
    assert report["memory_threshold"] == 123 * 1024 * 1024
    assert time.monotonic() - started < 30


def test_the_demo_paces_default_durations_by_its_speed_but_keeps_explicit_ones() -> None:
    config = Config(demo_speed=10.0, sample_interval=0.5, alert_for_seconds=42.0)
    demo = demo_analysis_config(config)
    assert demo.alert_for_seconds == 42.0  # given explicitly: kept
    assert demo.sample_interval == 0.5  # given explicitly: kept
    assert demo.trend_window == 30.0  # one cycle: 300 s / 10
    assert demo.alert_rate_window == 3.0  # 30 s / 10
    assert demo.alert_escalate_after_seconds == 6.0
    assert demo.alert_notify_cooldown_seconds == 1.5
    at_speed_1 = demo_analysis_config(Config())
    assert (at_speed_1.sample_interval, at_speed_1.alert_rate_window) == (5.0, 30.0)
    assert (at_speed_1.alert_for_seconds, at_speed_1.trend_window) == (15.0, 300.0)
    fast = demo_analysis_config(Config(demo_speed=100.0))
    assert fast.sample_interval == 0.25  # never faster than this
    assert fast.alert_rate_window == 1.0  # at least 4 samples


DEMO_ALERTS = {"CacheHitRatioLow", "CacheMemoryFullSoon", "CacheErrorRateHigh",
               "CacheCleanupStalled", "CacheEvictionRateHigh"}  # fmt: skip


def test_demo_at_high_speed_moves_trends_and_fires_alerts() -> None:
    """At speed 10 one cycle of the phases takes 30 s: every phase's alerts fire in it."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable, "-m", "cachewatch.cli", "demo", "--web.listen-address",
            f"{LOOPBACK}:{port}", "--demo.speed", "10", "--sample-interval", "250ms",
            "--duration", "90s",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for_port(port, 20)
        deadline = time.monotonic() + 60
        firing: set[str] = set()
        trends: list[str] = []
        while time.monotonic() < deadline:
            time.sleep(1)
            alerts = requests.get(f"http://{LOOPBACK}:{port}/alerts?limit=500", timeout=5).json()
            firing |= {t["alertname"] for t in alerts["transitions"] if t["state"] == "firing"}
            metrics = requests.get(f"http://{LOOPBACK}:{port}/metrics", timeout=5).text
            trends = [
                line for line in metrics.splitlines()
                if line.startswith("cachewatch_cache_memory_growth_bytes_per_second{")
                and float(line.split()[-1]) != 0
            ]  # fmt: skip
            if firing >= DEMO_ALERTS and trends:
                break
        assert firing >= DEMO_ALERTS
        assert trends
        report = requests.get(f"http://{LOOPBACK}:{port}/report", timeout=5).json()
        assert {c["cache"] for c in report["caches"]} == {
            "embedding_cache", "search_cache", "file_cache", "project_cache"
        }  # fmt: skip
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr[-2000:]
    assert "alert CacheHitRatioLow firing" in stderr


def _wait_for_status(port: int, path: str, status: int, seconds: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        response = requests.get(f"http://{LOOPBACK}:{port}{path}", timeout=5)
        last = response.status_code
        if last == status:
            body: dict[str, Any] = response.json()
            return body
        time.sleep(0.2)
    raise AssertionError(f"{path} answered {last}, not {status}, within {seconds}s")


def test_serve_mode_runs_the_analysis_and_health_follows_redis(redis: RedisServer) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable, "-m", "cachewatch.cli", "serve", "--redis.addr", redis.url,
            "--redis.cache", "sessions=session:", "--web.listen-address", f"{LOOPBACK}:{port}",
            "--sample-interval", "200ms", "--redis.connect-timeout", "500ms",
            "--redis.socket-timeout", "500ms",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for_port(port, 20)
        body = _wait_for_status(port, "/health", 200)
        assert body["checks"]["sampler"]["ok"] is True
        report = requests.get(f"http://{LOOPBACK}:{port}/report", timeout=5).json()
        assert {"source": "redis", "up": True, "error": None} in report["sources"]
        alerts = requests.get(f"http://{LOOPBACK}:{port}/alerts", timeout=5).json()
        assert alerts["firing"] == 0
        redis.stop()
        body = _wait_for_status(port, "/health", 503)
        assert body["checks"]["source:redis"]["ok"] is False
        redis.start()
        body = _wait_for_status(port, "/health", 200)
        assert body["checks"]["source:redis"]["ok"] is True
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr[-2000:]
    assert "CacheSourceDown pending" in stderr
