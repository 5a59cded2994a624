"""Sliding least-squares fits against exact least squares, and the per-cache signals."""

from __future__ import annotations

import math
import random

import pytest

from cachewatch.analysis.signals import CacheTracker
from cachewatch.analysis.trends import CounterWindow, Fit, SlidingFit

from .analysis_helpers import cache, exact_slope, exact_value_at, histogram

EPOCH = 1_800_000_000.0


def test_fit_matches_exact_least_squares_on_noisy_samples() -> None:
    rng = random.Random(7)
    fit = SlidingFit(window=600.0)
    samples = []
    for i in range(40):
        t = EPOCH + 15 * i + rng.uniform(-2, 2)
        value = 5e8 + 1234.5 * (t - EPOCH) + rng.gauss(0, 5e4)
        fit.add(t, value)
        samples.append((t, value))
    line = fit.fit()
    assert line is not None and line.samples == 40
    assert line.slope == pytest.approx(exact_slope(samples), rel=1e-9)
    assert line.intercept == pytest.approx(exact_value_at(samples, samples[-1][0]), rel=1e-9)
    assert line.predict(samples[0][0]) == pytest.approx(
        exact_value_at(samples, samples[0][0]), rel=1e-9
    )


def test_window_slides_and_stays_exact_over_a_long_uptime() -> None:
    """18 days of 15 s samples with Unix timestamps: still exact over the last window."""
    rng = random.Random(11)
    window, step = 900.0, 15.0
    fit = SlidingFit(window=window, capacity=70)
    recent: list[tuple[float, float]] = []
    t = EPOCH
    slope_now = 0.0
    for i in range(18 * 24 * 240):
        t += step
        slope_now = math.sin(i / 500.0) * 1e3
        value = 1e9 + slope_now * (t - EPOCH) / 1e3 + rng.gauss(0, 10.0)
        fit.add(t, value)
        recent.append((t, value))
        if len(recent) > 200:
            del recent[:100]
    in_window = [(ts, v) for ts, v in recent if ts > t - window]
    assert len(fit) == len(in_window) == 60
    assert fit.slope() == pytest.approx(exact_slope(in_window), rel=1e-7, abs=1e-9)


def test_exact_for_perfect_lines_and_none_when_underdetermined() -> None:
    fit = SlidingFit(window=100.0)
    assert fit.fit() is None
    fit.add(EPOCH, 3.0)
    assert fit.fit() is None
    fit.add(EPOCH, 4.0)  # same time twice: no spread in time
    assert fit.fit() is None
    fit.add(EPOCH + 10, 23.0)
    assert fit.slope() == pytest.approx(exact_slope([(EPOCH, 3), (EPOCH, 4), (EPOCH + 10, 23)]))
    with pytest.raises(ValueError):
        fit.add(EPOCH - 1, 0.0)


def test_samples_older_than_the_window_are_dropped() -> None:
    fit = SlidingFit(window=60.0)
    for i in range(10):
        fit.add(EPOCH + 10 * i, float(i * i))
    assert [t - EPOCH for t, _ in fit.samples] == [40, 50, 60, 70, 80, 90]
    fit.expire(EPOCH + 145)
    assert [t - EPOCH for t, _ in fit.samples] == [90]
    assert fit.fit() is None


def test_time_to_rise_to() -> None:
    line = Fit(slope=2.0, intercept=10.0, at=EPOCH, samples=3)
    assert line.time_to_rise_to(110.0, current=10.0) == 50.0
    assert line.time_to_rise_to(5.0, current=10.0) == 0.0
    assert Fit(-1.0, 10.0, EPOCH, 3).time_to_rise_to(100.0, 10.0) is None
    assert Fit(0.0, 10.0, EPOCH, 3).time_to_rise_to(100.0, 10.0) is None


def test_counter_window_spans_the_window_and_restarts_after_a_reset() -> None:
    window = CounterWindow(30.0)
    assert window.delta() is None
    for i in range(8):
        window.add(EPOCH + 10 * i, {"hits": 5.0 * i})
    span, inc = window.delta() or (0.0, {})
    assert span == 30.0 and inc["hits"] == 15.0
    window.add(EPOCH + 80, {"hits": 1.0})  # the source restarted
    assert window.delta() is None
    window.add(EPOCH + 90, {"hits": 4.0})
    assert window.delta() == (10.0, {"hits": 3.0})


def test_tracker_ratios_latency_and_forecast() -> None:
    tracker = CacheTracker("c", trend_window=600.0, rate_window=60.0, capacity=100)
    signals = None
    for i in range(13):
        t = EPOCH + 10 * i
        signals = tracker.update(
            cache(
                hits=80 * i,
                misses=20 * i,
                puts=20 * i,
                evictions=5 * i,
                errors={("get", "OSError"): 2 * i},
                memory_bytes=1000.0 + 50.0 * (t - EPOCH),
                memory_limit_bytes=20_000.0,
                size=100 + i,
                latency={"get": histogram({0.001: 98 * i, 0.01: 2 * i})},
            ),
            t,
        )
    assert signals is not None
    assert signals.request_rate == pytest.approx(10.0)
    assert signals.hit_ratio == pytest.approx(0.8)
    assert signals.trend_hit_ratio == pytest.approx(0.8)
    assert signals.eviction_ratio == pytest.approx(0.25)
    assert signals.error_ratio == pytest.approx(2 / 120)
    # 98 % of observations below 1 ms, 2 % in (1 ms, 10 ms]: p99 is halfway through it
    assert signals.latency_p99_seconds == pytest.approx(0.001 + 0.009 * 0.5)
    assert signals.memory_growth_bytes_per_second == pytest.approx(50.0)
    assert signals.size_growth_per_second == pytest.approx(0.1)
    assert signals.memory_limit_ratio == pytest.approx(7000 / 20000)
    assert signals.memory_full_seconds == pytest.approx((20_000 - 7000) / 50.0)
    assert signals.hit_ratio_change_per_hour == pytest.approx(0.0, abs=1e-9)


def test_tracker_hit_ratio_trend_per_hour() -> None:
    tracker = CacheTracker("c", trend_window=3600.0, rate_window=60.0, capacity=500)
    hits = misses = 0
    signals = None
    for i in range(100):
        ratio = 0.9 - 0.001 * i  # falls by 0.001 per 10 s: -0.36 per hour
        hits += round(1000 * ratio)
        misses += 1000 - round(1000 * ratio)
        signals = tracker.update(cache(hits=hits, misses=misses), EPOCH + 10 * i)
    assert signals is not None and signals.hit_ratio_change_per_hour is not None
    assert signals.hit_ratio_change_per_hour == pytest.approx(-0.36, rel=0.01)


def test_tracker_cleanup_rhythm_and_overdue_factor() -> None:
    tracker = CacheTracker("c", trend_window=3600.0, rate_window=60.0, capacity=500)
    runs, last = 0, None
    signals = None
    for i in range(60):
        t = EPOCH + 10 * i
        if i % 6 == 0 and i <= 30:  # a cleanup every 60 s, then none after t+300
            runs, last = runs + 1, t
        snapshot = cache(cleanups={"scheduled": runs}, last_cleanup_timestamp=last)
        signals = tracker.update(snapshot, t)
    assert signals is not None
    assert signals.usual_cleanup_interval_seconds == pytest.approx(60.0)
    assert signals.seconds_since_cleanup == pytest.approx(590 - 300)
    assert signals.cleanup_overdue_factor == pytest.approx(290 / 60)
    assert signals.cleanups_per_hour == pytest.approx(5 / 590 * 3600)
