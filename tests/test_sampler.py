"""The sampler feeds trackers and alerts from the hub; the trend gauges reach /metrics."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest

from cachewatch import CacheRegistry, Exporter, instrument
from cachewatch.web.server import HttpServer

from .analysis_helpers import FakeClock, analysis_config, cache, source
from .scrape import samples, value


def test_trend_gauges_from_fed_snapshots(exporter: Exporter) -> None:
    clock = FakeClock()
    analysis = exporter.attach_analysis(analysis_config(), clock=clock, start=False)
    for i in range(20):
        t = clock.advance(10)
        analysis.sampler.feed(
            [
                source(
                    cache(
                        "grow",
                        hits=90 * i,
                        misses=10 * i,
                        size=10 * i,
                        memory_bytes=1e6 + 2e3 * i * 10,
                        memory_limit_bytes=2e6,
                    ),
                    cache("flat", hits=5, misses=5, size=3, memory_bytes=500.0),
                    at=t,
                )
            ]
        )
    registry = exporter.registry
    assert registry.get_sample_value("cachewatch_cache_hit_ratio", {"cache": "grow"}) == (
        pytest.approx(0.9)
    )
    assert registry.get_sample_value(
        "cachewatch_cache_memory_growth_bytes_per_second", {"cache": "grow"}
    ) == pytest.approx(2000.0)
    assert registry.get_sample_value(
        "cachewatch_cache_size_growth_per_second", {"cache": "grow"}
    ) == pytest.approx(1.0)
    memory_now = 1e6 + 2e3 * 19 * 10
    assert registry.get_sample_value(
        "cachewatch_cache_memory_full_seconds", {"cache": "grow"}
    ) == pytest.approx((2e6 - memory_now) / 2000.0)
    # not growing, no limit, no lookups in the window: no forecast and no hit ratio
    flat = {"cache": "flat"}
    assert registry.get_sample_value("cachewatch_cache_memory_full_seconds", flat) is None
    assert registry.get_sample_value("cachewatch_cache_hit_ratio", flat) is None
    assert registry.get_sample_value(
        "cachewatch_cache_memory_growth_bytes_per_second", {"cache": "flat"}
    ) == pytest.approx(0.0)
    assert registry.get_sample_value(
        "cachewatch_analysis_last_sample_timestamp_seconds"
    ) == pytest.approx(clock.now)
    assert registry.get_sample_value("cachewatch_host_memory_total_bytes")


def test_trend_gauges_follow_each_sample_and_stay_the_same_objects_between(
    exporter: Exporter,
) -> None:
    clock = FakeClock()
    analysis = exporter.attach_analysis(analysis_config(), clock=clock, start=False)
    from cachewatch.analysis.sampler import TrendCollector

    collector = TrendCollector(analysis.sampler)

    def feed(i: int) -> None:
        t = clock.advance(10)
        analysis.sampler.feed([source(cache("c", hits=9 * i, misses=i, size=i), at=t)])

    def trends() -> list[Any]:
        return [f for f in collector.collect() if f.name.startswith("cachewatch_cache_")]

    for i in range(5):
        feed(i)
    first, second = trends(), trends()
    assert first and all(a is b for a, b in zip(first, second, strict=True))
    size_growth = [f for f in first if f.name == "cachewatch_cache_size_growth_per_second"]
    feed(50)  # a jump in size: the growth gauge moves, in new families
    moved = [f for f in trends() if f.name == "cachewatch_cache_size_growth_per_second"]
    assert moved[0] is not size_growth[0]
    assert moved[0].samples[0].value > size_growth[0].samples[0].value


def test_background_sampler_polls_the_hub_and_publishes_on_metrics(
    cache_table: CacheRegistry, exporter: Exporter, http: HttpServer
) -> None:
    exporter.attach_analysis(analysis_config(sample_interval=0.05))
    lookups = instrument({}, "live", registry=cache_table)
    deadline = time.monotonic() + 10
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    i = 0
    while time.monotonic() < deadline:
        for _ in range(20):
            i += 1
            lookups.get(i % 7) or lookups.__setitem__(i % 7, i)
        time.sleep(0.02)
        found = samples(http.port)
        if value(found, "cachewatch_cache_hit_ratio", cache="live") is not None and i > 400:
            break
    ratio = value(found, "cachewatch_cache_hit_ratio", cache="live")
    assert ratio is not None and 0.9 < ratio <= 1.0
    assert value(found, "cachewatch_cache_size_growth_per_second", cache="live") is not None
    share = value(found, "cachewatch_caches_memory_share_ratio", scope="process")
    assert share is not None and 0 < share < 1
    assert exporter.analysis.sampler.samples >= 2
    thread = exporter.analysis.sampler._thread
    assert thread is not None and thread.daemon and thread.is_alive()
    exporter.close()
    assert not thread.is_alive()


def test_caches_not_seen_for_a_window_are_forgotten(exporter: Exporter) -> None:
    clock = FakeClock()
    analysis = exporter.attach_analysis(analysis_config(), clock=clock, start=False)
    analysis.sampler.feed([source(cache("gone", hits=1), cache("stays", hits=1))])
    for _ in range(61):
        clock.advance(10)
        analysis.sampler.feed([source(cache("stays", hits=1))])
    assert set(analysis.sampler.signals()) == {"stays"}


def test_a_round_dated_before_the_last_sample_is_taken_as_of_it(exporter: Exporter) -> None:
    analysis = exporter.attach_analysis(analysis_config(), clock=FakeClock(), start=False)
    sampler = analysis.sampler
    sampler.feed([source(cache("c", hits=1, memory_bytes=10.0))], now=100.0)
    sampler.feed([source(cache("c", hits=2, memory_bytes=20.0))], now=99.9)  # no ValueError
    assert sampler.last_sample == 100.0 and sampler.samples == 2
    assert sampler.history("c")["memory_bytes"] == [(100.0, 10.0), (100.0, 20.0)]


FORKED = """
import os, threading
from cachewatch import CacheRegistry, Exporter
from cachewatch.config import AnalysisSettings
from cachewatch.sources.local import LocalSource

table = CacheRegistry()
exporter = Exporter([LocalSource(table)], caches=table, process_metrics=False)
sampler = exporter.attach_analysis(AnalysisSettings(sample_interval=0.2)).sampler
names = lambda: [t.name for t in threading.enumerate()]
assert "cachewatch-sampler" in names()
pid = os.fork()
if pid == 0:
    idle = "cachewatch-sampler" not in names()  # a child that never serves starts nothing
    fresh, _age = sampler.freshness()           # the first read of the analysis resumes it
    os._exit(0 if idle and fresh and "cachewatch-sampler" in names() else 1)
assert os.waitpid(pid, 0)[1] == 0
"""


def test_a_forked_child_samples_again_once_it_serves() -> None:
    done = subprocess.run(
        [sys.executable, "-c", FORKED], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
