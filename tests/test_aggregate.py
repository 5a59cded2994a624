"""The rule of each metric over many processes: counters and histograms summed over every
process ever seen, entries and memory over live ones, the latest cleanup time and exemplar,
and the cap on cache names applied to the aggregate."""

from __future__ import annotations

import dataclasses

from cachewatch.instrument import procfile
from cachewatch.instrument.procfile import ProcessFile, ProcessMeta
from cachewatch.snapshot import CacheSnapshot, Exemplar
from cachewatch.sources.aggregate import aggregate

from .test_procfile import sample_cache

LAYOUTS = procfile.LayoutCache()


def process(pid: int, caches: list[tuple[CacheSnapshot, float]]) -> ProcessFile:
    meta = ProcessMeta(pid=pid, token=f"{pid:08x}", started=1.0, pid_namespace="",
                       flush_interval=1.0, dropped=1)  # fmt: skip
    return procfile.decode(procfile.encode(meta, caches), LAYOUTS)


def by_name(files: list[tuple[ProcessFile, bool]], cap: int = 200) -> dict[str, CacheSnapshot]:
    return {c.name: c for c in aggregate(files, cap, "multiprocess").caches}


def test_counters_sum_over_every_process_and_gauges_over_live_ones() -> None:
    one = process(1, [(sample_cache(hits=10), 5.0)])
    two = process(2, [(sample_cache(hits=20), 6.0)])
    gone = process(
        3, [(dataclasses.replace(sample_cache(hits=30), last_cleanup_timestamp=999.0), 7.0)]
    )
    cache = by_name([(one, True), (two, True), (gone, False)])["embeddings"]
    assert cache.hits == 60 and cache.misses == 9 and cache.evictions == 6
    assert cache.errors == {("get", "TimeoutError"): 6} and cache.cleanups == {"scheduled": 3}
    assert cache.latency["get"].count == 15 and abs(cache.latency["get"].sum - 0.0375) < 1e-12
    assert cache.cleanup_duration is not None and cache.cleanup_duration.count == 3
    assert cache.size == 20 and cache.memory_bytes == 4096.0 and cache.max_entries == 200
    assert cache.memory_limit_bytes is None  # unknown everywhere stays unknown, not 0
    assert cache.last_cleanup_timestamp == 999.0  # the latest, a dead process's included
    assert cache.source == "multiprocess"


def test_no_live_process_leaves_the_gauges_unknown() -> None:
    cache = by_name([(process(1, [(sample_cache(), 5.0)]), False)])["embeddings"]
    assert cache.hits == 7 and cache.size is None and cache.memory_bytes is None


def test_processes_with_different_caches_merge_by_name() -> None:
    one = process(1, [(sample_cache("a", 1), 5.0), (sample_cache("b", 2), 5.0)])
    two = process(2, [(sample_cache("b", 3), 4.0)])
    three = process(3, [(dataclasses.replace(sample_cache("c", 4), latency={}), 9.0)])
    found = by_name([(one, True), (two, True), (three, True)])
    assert {name: c.hits for name, c in found.items()} == {"a": 1, "b": 5, "c": 4}
    assert found["c"].latency == {} and found["b"].latency["get"].count == 10
    result = aggregate([(one, True), (two, True)], 200, "multiprocess")
    assert result.first_seen == {"a": 5.0, "b": 4.0} and result.dropped == 2


def test_the_latest_exemplar_of_each_bucket_wins() -> None:
    cache = sample_cache()
    bound = procfile.LATENCY_BOUNDS[6]
    newer = dataclasses.replace(
        cache.latency["get"], exemplars={bound: Exemplar("cd" * 16, 8e-5, 50.0)}
    )
    files = [
        (process(1, [(cache, 5.0)]), True),
        (process(2, [(dataclasses.replace(cache, latency={"get": newer}), 5.0)]), False),
    ]
    exemplar = by_name(files)["embeddings"].latency["get"].exemplars[bound]
    assert exemplar.trace_id == "cd" * 16 and exemplar.timestamp == 50.0


def test_the_cap_applies_to_the_aggregate_and_keeps_the_earliest_names() -> None:
    # Each process is within its own cap; together they are not.
    one = process(1, [(sample_cache(f"early-{i}", 1), float(i)) for i in range(3)])
    two = process(2, [(sample_cache(f"late-{i}", 1), 100.0 + i) for i in range(3)])
    other = process(3, [(sample_cache("other", 5), 0.5)])
    result = aggregate([(one, True), (two, True), (other, True)], 4, "multiprocess")
    found = {c.name: c for c in result.caches}
    assert set(found) == {"early-0", "early-1", "early-2", "late-0", "other"}
    assert found["other"].hits == 5 + 2  # a process's own overflow and the aggregate's
    assert found["other"].size == 30 and result.folded == 2
    # The same files in any order give the same names: a name never flips between scrapes.
    again = aggregate([(two, True), (other, True), (one, True)], 4, "multiprocess")
    assert {c.name for c in again.caches} == set(found)
