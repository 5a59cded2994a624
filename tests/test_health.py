"""/health: sources (a real redis-server stopped and restarted), sampler freshness, each
cache's alert state, memory; and ``cachewatch_health_check_ok``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis as redis_client
import requests

from cachewatch import CacheRegistry, Exporter
from cachewatch.analysis.engine import Analysis
from cachewatch.config import RedisSettings
from cachewatch.config.redisurl import parse_cache_prefix, parse_redis_address
from cachewatch.sources.local import LocalSource
from cachewatch.sources.redis import RedisSource
from cachewatch.web.routes import make_wsgi_app
from cachewatch.web.server import HttpServer, serve

from .analysis_helpers import FakeClock, analysis_config, cache, source
from .scrape import samples, value
from .servers import RedisServer


@pytest.fixture
def redis_exporter(
    cache_table: CacheRegistry, redis: RedisServer
) -> Iterator[tuple[Exporter, HttpServer]]:
    """An exporter over the real Redis source (a logical cache ``sessions``) and local caches."""
    settings = RedisSettings(
        address=parse_redis_address(redis.url),
        caches=(parse_cache_prefix("sessions=session:"),),
        connect_timeout=0.5,
        socket_timeout=0.5,
        census_interval=0.1,
    )
    source = RedisSource(settings, backoff_initial=0.1, backoff_max=0.4)
    built = Exporter([source, LocalSource(cache_table)], caches=cache_table)
    server = serve(make_wsgi_app(built), "127.0.0.1", 0)
    yield built, server
    server.shutdown()
    built.close()


def sample_until(analysis: Analysis, done: Callable[[], bool], seconds: float = 10.0) -> None:
    """Sample (as the sampler thread would) until ``done``, bounded in time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        analysis.sampler.sample()
        if done():
            return
        time.sleep(0.1)
    raise AssertionError(f"condition not reached within {seconds}s")


def health(port: int) -> tuple[int, Any]:
    response = requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
    return response.status_code, response.json()


def test_health_goes_503_when_redis_stops_and_back_when_it_returns(
    redis_exporter: tuple[Exporter, HttpServer], redis: RedisServer
) -> None:
    exporter, http = redis_exporter
    keys = redis_client.Redis.from_url(redis.url)
    keys.mset({f"session:{i}": "x" * 100 for i in range(50)})
    keys.close()
    analysis = exporter.attach_analysis(analysis_config(sample_interval=1.0), start=False)

    def census_done() -> bool:
        sessions = analysis.sampler.signals().get("sessions")
        return sessions is not None and sessions.snapshot.size == 50

    sample_until(analysis, census_done)  # the key census counts the cache's keys
    code, body = health(http.port)
    assert code == 200 and body["status"] == "healthy"
    assert body["checks"]["source:redis"]["ok"] is True
    assert body["checks"]["sampler"]["ok"] is True
    assert body["checks"]["cache:sessions"] == {"ok": True, "state": "ok", "reasons": []}
    assert body["checks"]["memory"]["host_total_bytes"] > 0
    report = requests.get(f"http://127.0.0.1:{http.port}/report", timeout=5).json()
    (sessions,) = [c for c in report["caches"] if c["cache"] == "sessions"]
    assert sessions["source"] == "redis" and sessions["entries"]["size"] == 50

    redis.stop()
    analysis.sampler.sample()
    code, body = health(http.port)
    assert code == 503 and body["status"] == "unhealthy"
    check = body["checks"]["source:redis"]
    assert check["ok"] is False and check["up"] is False and check["error"]
    assert body["checks"]["source:local"]["ok"] is True
    found = samples(http.port)
    assert value(found, "cachewatch_health_check_ok", check="source:redis") == 0
    assert value(found, "cachewatch_health_check_ok", check="source:local") == 1
    (down,) = [s for s in analysis.evaluator.states() if s.alertname == "CacheSourceDown"]
    assert (down.cache, down.state, down.severity) == ("redis", "pending", "critical")

    redis.start()
    sample_until(analysis, lambda: health(http.port)[0] == 200)
    code, body = health(http.port)
    assert code == 200 and body["checks"]["source:redis"]["ok"] is True
    assert value(samples(http.port), "cachewatch_health_check_ok", check="source:redis") == 1
    (back,) = [s for s in analysis.evaluator.states() if s.alertname == "CacheSourceDown"]
    assert back.state == "inactive"  # pending for less than its 'for': never fired


def test_stale_sampler_makes_health_fail(exporter: Exporter, http: HttpServer) -> None:
    clock = FakeClock()
    analysis = exporter.attach_analysis(analysis_config(sample_interval=10.0), clock=clock,
                               start=False)  # fmt: skip
    analysis.sampler.sample()
    assert health(http.port)[0] == 200
    clock.advance(34)  # three intervals and the 5 s grace: still fresh
    assert health(http.port)[0] == 200
    clock.advance(2)
    code, body = health(http.port)
    assert code == 503
    assert body["checks"]["sampler"]["ok"] is False
    assert body["checks"]["sampler"]["last_sample_age_seconds"] == pytest.approx(36)
    analysis.sampler.sample()
    assert health(http.port)[0] == 200


def test_cache_state_ok_warning_critical_with_reasons_503_when_asked(
    exporter: Exporter, http: HttpServer
) -> None:
    clock = FakeClock()
    config = analysis_config(
        alert_for_seconds=0.0, alert_rate_window=10.0, health_fail_on_critical=True
    )
    analysis = exporter.attach_analysis(config, clock=clock, start=False)

    def feed(hit_ratio: float, i: int) -> None:
        hits = int(1000 * i * hit_ratio)
        analysis.sampler.feed([source(cache("hot", hits=hits, misses=1000 * i - hits))])

    feed(0.95, 0)
    clock.advance(10)
    feed(0.95, 1)
    code, body = health(http.port)
    assert code == 200 and body["checks"]["cache:hot"] == {
        "ok": True, "state": "ok", "reasons": []
    }  # fmt: skip
    clock.advance(10)
    analysis.sampler.feed([source(cache("hot", hits=950 + 700, misses=50 + 300))])
    code, body = health(http.port)
    assert code == 200
    check = body["checks"]["cache:hot"]
    assert check["state"] == "warning" and check["ok"] is True
    assert check["reasons"] == ["CacheHitRatioLow: hit_ratio=0.7 < 0.8 (warning)"]
    clock.advance(10)
    analysis.sampler.feed([source(cache("hot", hits=1650 + 100, misses=350 + 900))])
    code, body = health(http.port)
    assert code == 503
    assert body["checks"]["cache:hot"]["state"] == "critical"
    assert body["checks"]["cache:hot"]["reasons"] == [
        "CacheHitRatioLow: hit_ratio=0.1 < 0.5 (critical)"
    ]


def test_a_critical_cache_keeps_health_200_by_default(exporter: Exporter, http: HttpServer) -> None:
    clock = FakeClock()
    config = analysis_config(alert_for_seconds=0.0, alert_rate_window=10.0)
    assert config.health_fail_on_critical is False
    analysis = exporter.attach_analysis(config, clock=clock, start=False)
    analysis.sampler.feed([source(cache("hot", hits=0, misses=0))])
    clock.advance(10)
    analysis.sampler.feed([source(cache("hot", hits=10, misses=990))])
    code, body = health(http.port)
    assert code == 200
    assert body["checks"]["cache:hot"]["state"] == "critical"
    assert body["checks"]["cache:hot"]["ok"] is True


def test_the_check_gauges_follow_a_check_that_flips() -> None:
    from cachewatch.analysis.health import CheckResult, HealthMonitor
    from cachewatch.sources.poller import Poller

    monitor = HealthMonitor(Poller([]))
    state = {"ok": True}
    monitor.add_check(lambda: {"flips": CheckResult(state["ok"])})

    def gauge() -> tuple[Any, float]:
        (family,) = monitor.collect()
        (sample,) = [s for s in family.samples if s.labels["check"] == "flips"]
        return family, sample.value

    (first, up), (again, _) = gauge(), gauge()
    assert up == 1 and again is first  # nothing changed: the same frozen family
    state["ok"] = False
    flipped, down = gauge()
    assert down == 0 and flipped is not first
