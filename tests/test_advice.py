"""Recommendations with their evidence, /report, and the ``cachewatch report`` command."""

from __future__ import annotations

import pytest
import requests

from cachewatch import Exporter
from cachewatch.analysis.advice import recommendations
from cachewatch.analysis.signals import CacheSignals
from cachewatch.web.server import HttpServer

from .analysis_helpers import analysis_config, cache, feed_thrashing_and_calm

CONFIG = analysis_config()
MB = 1024 * 1024


def signals(**values: object) -> CacheSignals:
    snapshot = values.pop("snapshot", cache("c"))
    values.setdefault("request_rate", 50.0)
    return CacheSignals("c", "local", 0.0, snapshot, **values)  # type: ignore[arg-type]


def kinds(s: CacheSignals) -> list[str]:
    return [r.kind for r in recommendations(s, CONFIG)]


def test_low_hit_ratio_with_high_evictions_means_capacity_too_small() -> None:
    s = signals(hit_ratio=0.42, eviction_ratio=0.63, snapshot=cache("c", max_entries=4000))
    (advice,) = recommendations(s, CONFIG)
    assert advice.kind == "capacity_too_small"
    assert advice.evidence == {
        "hit_ratio": 0.42, "evictions_per_put": 0.63, "requests_per_second": 50.0,
        "max_entries": 4000,
    }  # fmt: skip
    assert "hit ratio 42.0%" in advice.message and "0.63 evictions per put" in advice.message
    assert "now 4000 entries" in advice.message


def test_low_hit_ratio_with_many_expirations_means_the_ttl_is_too_short() -> None:
    s = signals(
        hit_ratio=0.3,
        eviction_ratio=0.01,
        window_increase={"puts": 1000.0, "expirations": 800.0},
    )
    (advice,) = recommendations(s, CONFIG)
    assert advice.kind == "ttl_too_short"
    assert advice.evidence["expirations_per_put"] == 0.8
    assert advice.evidence["hit_ratio"] == 0.3
    assert "0.80 expirations per put" in advice.message and "30.0%" in advice.message
    assert "lengthen the TTL" in advice.message


def test_no_ttl_advice_for_a_cache_without_a_ttl() -> None:
    # A plain dict: nothing ever expires, so the TTL cannot be the cause.
    s = signals(hit_ratio=0.3, eviction_ratio=0.0, window_increase={"puts": 1000.0})
    (advice,) = recommendations(s, CONFIG)
    assert advice.kind == "keys_rarely_repeat"
    assert advice.evidence["expirations_per_put"] == 0.0
    assert "TTL" not in advice.message and "ttl" not in advice.message.lower()
    assert "keys rarely repeat" in advice.message
    # A TTL cache whose entries seldom expire gets the same advice: its TTL is not the cause.
    few = signals(
        hit_ratio=0.3, eviction_ratio=0.0, window_increase={"puts": 1000.0, "expirations": 50.0}
    )
    assert kinds(few) == ["keys_rarely_repeat"]


def test_no_hit_ratio_advice_for_a_healthy_or_idle_cache() -> None:
    assert kinds(signals(hit_ratio=0.95, eviction_ratio=0.9)) == []
    assert kinds(signals(hit_ratio=0.1, eviction_ratio=0.9, request_rate=0.2)) == []


def test_memory_full_soon() -> None:
    s = signals(
        memory_full_seconds=5400.0,
        memory_growth_bytes_per_second=2 * MB / 60,
        snapshot=cache("c", memory_bytes=400 * MB, memory_limit_bytes=580 * MB),
    )
    (advice,) = recommendations(s, CONFIG)
    assert advice.kind == "memory_full_soon"
    assert advice.evidence["memory_full_seconds"] == 5400.0
    assert advice.evidence["memory_limit_bytes"] == 580 * MB
    assert "reached in 90m" in advice.message and "400.0 MiB of 580.0 MiB" in advice.message
    far = signals(memory_full_seconds=5 * 86400.0, memory_growth_bytes_per_second=1.0)
    assert kinds(far) == []


def test_rising_errors() -> None:
    s = signals(
        error_ratio=0.12,
        window_increase={"hits": 900.0, "misses": 100.0, "errors": 20.0},
        snapshot=cache("c", errors={("load", "BackendError"): 42, ("get", "Timeout"): 3}),
    )
    (advice,) = recommendations(s, CONFIG)
    assert advice.kind == "errors_rising"
    assert advice.evidence == {"error_ratio": 0.12, "trend_window_error_ratio": 0.02}
    assert "12.0% of operations failed" in advice.message
    assert "load BackendError (42 in total)" in advice.message
    # below the warning threshold but four times the window's rate: still rising
    rising = signals(error_ratio=0.04, window_increase={"hits": 1000.0, "errors": 10.0})
    assert kinds(rising) == ["errors_rising"]
    steady = signals(error_ratio=0.012, window_increase={"hits": 1000.0, "errors": 10.0})
    assert kinds(steady) == []


def test_stalled_cleanup() -> None:
    s = signals(
        cleanup_overdue_factor=5.0,
        seconds_since_cleanup=300.0,
        usual_cleanup_interval_seconds=60.0,
    )
    (advice,) = recommendations(s, CONFIG)
    assert advice.kind == "cleanup_stalled"
    assert advice.evidence == {
        "seconds_since_cleanup": 300.0, "usual_interval_seconds": 60.0, "overdue_factor": 5.0,
    }  # fmt: skip
    assert "no cleanup for 5m, 5.0x the usual interval of 60s" in advice.message
    assert kinds(signals(cleanup_overdue_factor=2.0, seconds_since_cleanup=120.0,
                         usual_cleanup_interval_seconds=60.0)) == []  # fmt: skip


def test_report_route(exporter: Exporter, http: HttpServer) -> None:
    feed_thrashing_and_calm(exporter)
    body = requests.get(f"http://127.0.0.1:{http.port}/report", timeout=5).json()
    by_name = {c["cache"]: c for c in body["caches"]}
    thrash, calm = by_name["thrash"], by_name["calm"]
    assert thrash["hit_ratio"]["recent"] == pytest.approx(0.2)
    assert thrash["evictions"]["per_put"] == pytest.approx(0.875)
    assert thrash["requests"]["per_second"] == pytest.approx(10.0)
    assert thrash["trends"]["memory_growth_bytes_per_second"] == pytest.approx(100.0)
    assert thrash["forecast"]["memory_full_seconds"] == pytest.approx((2e5 - 1.09e5) / 100)
    assert [r["kind"] for r in thrash["recommendations"]] == [
        "capacity_too_small", "memory_full_soon"
    ]  # fmt: skip
    assert {a["alertname"] for a in thrash["alerts"] if a["state"] == "firing"} == {
        "CacheHitRatioLow", "CacheEvictionRateHigh", "CacheMemoryFullSoon"
    }  # fmt: skip
    assert thrash["status"] == "critical"
    assert calm["status"] == "ok" and calm["recommendations"] == []
    assert body["sources"] == [{"source": "local", "up": True, "error": None}]
    assert body["memory"]["host_total_bytes"] > 0
