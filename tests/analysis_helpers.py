"""Helpers for the analysis tests: exact least squares, snapshots, a fake clock, a config."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from cachewatch.config import AnalysisSettings
from cachewatch.exporter import Exporter
from cachewatch.snapshot import CacheSnapshot, HistogramSnapshot, SourceSnapshot


def exact_slope(samples: Sequence[tuple[float, float]]) -> float:
    """The least-squares slope computed exactly with rationals (no numpy, no rounding)."""
    xs = [Fraction(t) for t, _ in samples]
    ys = [Fraction(v) for _, v in samples]
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    cov = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    var = sum((x - mean_x) ** 2 for x in xs)
    return float(cov / var)


def exact_value_at(samples: Sequence[tuple[float, float]], at: float) -> float:
    xs = [Fraction(t) for t, _ in samples]
    ys = [Fraction(v) for _, v in samples]
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    slope = Fraction(exact_slope(samples))
    return float(mean_y + slope * (Fraction(at) - mean_x))


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def analysis_config(**changes: Any) -> AnalysisSettings:
    """Short windows and timings so a test can walk through them in a few samples."""
    base = AnalysisSettings(
        sample_interval=10.0,
        trend_window=600.0,
        alert_rate_window=60.0,
        alert_for_seconds=30.0,
        alert_escalate_after_seconds=120.0,
        alert_notify_cooldown_seconds=100.0,
    )
    return dataclasses.replace(base, **changes)


def histogram(counts: dict[float, int]) -> HistogramSnapshot:
    """A cumulative histogram from per-bucket counts keyed by upper bound."""
    cumulative, buckets = 0, []
    for bound in sorted(counts):
        cumulative += counts[bound]
        buckets.append((bound, cumulative))
    buckets.append((float("inf"), cumulative))
    return HistogramSnapshot(tuple(buckets), 0.0, cumulative)


def cache(name: str = "c", **fields: Any) -> CacheSnapshot:
    return CacheSnapshot(name=name, source=fields.pop("source", "local"), **fields)


def source(
    *caches: CacheSnapshot, name: str = "local", up: bool = True, at: float = 0.0
) -> SourceSnapshot:
    return SourceSnapshot(name, up, at, 0.001, tuple(caches), error=None if up else "Down")


def feed_thrashing_and_calm(exporter: Exporter) -> None:
    """Two caches through ten samples: ``thrash`` (hit ratio 20%, 0.88 evictions per put,
    memory toward its limit) and ``calm`` (hit ratio 99%)."""
    clock = FakeClock()
    analysis = exporter.attach_analysis(analysis_config(), clock=clock, start=False)
    for i in range(10):
        clock.advance(10)
        thrashing = cache(
            "thrash", hits=20 * i, misses=80 * i, puts=80 * i, evictions=70 * i, size=100,
            max_entries=100, memory_bytes=1e5 + 1e3 * i, memory_limit_bytes=2e5,
        )  # fmt: skip
        analysis.sampler.feed([source(thrashing, cache("calm", hits=99 * i, misses=i))])
