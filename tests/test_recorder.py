"""The recorder API for caches of any kind: counts, limits, cleanups, latency, errors."""

from __future__ import annotations

import pytest

import cachewatch
from cachewatch import CacheRegistry
from cachewatch.catalog import OTHER
from cachewatch.instrument.recorder import (
    MAX_ERROR_KINDS_PER_CACHE,
    MAX_OPERATIONS_PER_CACHE,
    CacheRecorder,
    LatencyHistogram,
    Reading,
    Tally,
)
from cachewatch.web.server import HttpServer

from .scrape import samples, value


def test_recorder_api(cache_table: CacheRegistry, http: HttpServer) -> None:
    rec = cachewatch.cache_metrics(
        "custom", max_entries=100, memory_limit_bytes=4096, registry=cache_table
    )
    rec.hit()
    rec.miss()
    rec.put()
    rec.remove()
    rec.evict(3)
    rec.expire(2)
    rec.error("get", TimeoutError())
    rec.set_size(42)
    rec.set_memory(1024)
    rec.cleanup(removed=5, duration_seconds=0.002, trigger="ttl")
    with rec.time("get"):
        pass
    with pytest.raises(ValueError), rec.time("put"):
        raise ValueError("boom")
    found = samples(http.port)
    assert value(found, "cache_evictions_total", cache="custom") == 3
    assert value(found, "cachewatch_cache_expirations_total", cache="custom") == 2
    assert value(found, "cache_size", cache="custom") == 42
    assert value(found, "cachewatch_cache_memory_bytes", cache="custom") == 1024
    assert value(found, "cachewatch_cache_memory_limit_bytes", cache="custom") == 4096
    assert value(found, "cachewatch_cache_max_entries", cache="custom") == 100
    assert (
        value(found, "cachewatch_cache_errors_total", cache="custom", operation="get",
              error="TimeoutError") == 1
    )  # fmt: skip
    assert (
        value(found, "cachewatch_cache_errors_total", cache="custom", operation="put",
              error="ValueError") == 1
    )  # fmt: skip
    assert value(found, "cachewatch_cache_cleanups_total", cache="custom", trigger="ttl") == 1
    assert value(found, "cachewatch_cache_cleanup_removed_entries_total", cache="custom") == 5
    assert value(found, "cachewatch_cache_cleanup_duration_seconds_count", cache="custom") == 1
    assert value(found, "cachewatch_cache_last_cleanup_timestamp_seconds", cache="custom")
    assert (
        value(found, "cachewatch_cache_operation_duration_seconds_count", cache="custom",
              operation="put") == 1
    )  # fmt: skip


def test_tally_counts_without_a_lock_and_adds_with_one() -> None:
    tally = Tally()
    for _ in range(5):
        tally.inc()
    tally.add(10)
    tally.add(1)
    assert tally.value == 16
    with pytest.raises(ValueError, match="only goes up"):
        tally.add(-1)


def test_latency_histogram_is_cumulative_with_one_exemplar_per_bucket() -> None:
    histogram = LatencyHistogram((0.001, 0.01))
    histogram.observe(0.0005)
    histogram.observe(0.005, trace_id="t1")
    histogram.observe(0.007, trace_id="t2")
    histogram.observe(1.0)
    snap = histogram.snapshot()
    assert snap.buckets == ((0.001, 1), (0.01, 3), (float("inf"), 4))
    assert snap.count == 4 and snap.sum == pytest.approx(1.0125)
    assert {bound: e.trace_id for bound, e in snap.exemplars.items()} == {0.01: "t2"}


def test_snapshot_adds_up_live_readings_and_drops_dead_ones() -> None:
    recorder = CacheRecorder("shared")
    recorder.hit()

    class Owner:
        pass

    alive, dead = Owner(), Owner()
    recorder.add_weak_provider(alive, lambda _o: Reading(size=3, hits=2, memory_bytes=10.0))
    recorder.add_weak_provider(dead, lambda _o: Reading(size=5, hits=4, memory_bytes=20.0))
    assert recorder.snapshot().size == 8 and recorder.snapshot().hits == 7
    del dead
    snap = recorder.snapshot()
    assert (snap.size, snap.hits, snap.memory_bytes) == (3, 3, 10.0)


def test_label_values_beyond_their_caps_fold_into_other() -> None:
    recorder = CacheRecorder("many")
    for i in range(MAX_ERROR_KINDS_PER_CACHE + 5):
        recorder.error("get", f"Error{i}")
    for i in range(MAX_OPERATIONS_PER_CACHE + 5):
        recorder.observe(f"op{i}", 0.001)
    snap = recorder.snapshot()
    assert len(snap.errors) == MAX_ERROR_KINDS_PER_CACHE + 1
    assert snap.errors[("get", OTHER)] == 5
    assert len(snap.latency) == MAX_OPERATIONS_PER_CACHE + 1 and OTHER in snap.latency
