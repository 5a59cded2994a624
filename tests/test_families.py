"""Snapshots -> metric families: the catalogue's names and labels, counters only where the
source knows them, exemplars on buckets, and the per-source families."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from cachewatch import __version__
from cachewatch.exposition.families import SnapshotCollector, cache_families, source_families
from cachewatch.snapshot import CacheSnapshot, Exemplar, HistogramSnapshot, SourceSnapshot
from cachewatch.sources.poller import Poller


def _samples(families: list[Metric]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def test_cache_families_carry_the_catalogue_names_and_labels() -> None:
    latency = HistogramSnapshot(
        ((0.001, 3), (float("inf"), 4)), 0.01, 4, {0.001: Exemplar("ab" * 16, 0.0005, 1.0)}
    )
    snapshot = CacheSnapshot(
        "c1", "local", hits=7, misses=3, puts=5, evictions=1, size=9, memory_bytes=1024.0,
        memory_limit_bytes=4096.0, errors={("get", "TimeoutError"): 2},
        cleanups={"scheduled": 1}, latency={"get": latency},
    )  # fmt: skip
    families = cache_families([snapshot])
    found = _samples(families)
    assert found[("cache_gets_total", (("cache", "c1"), ("result", "hit")))] == 7
    assert found[("cache_gets_total", (("cache", "c1"), ("result", "miss")))] == 3
    assert found[("cache_size", (("cache", "c1"),))] == 9
    assert found[("cachewatch_cache_memory_limit_bytes", (("cache", "c1"),))] == 4096
    errors = (("cache", "c1"), ("error", "TimeoutError"), ("operation", "get"))
    assert found[("cachewatch_cache_errors_total", errors)] == 2
    bucket = (("cache", "c1"), ("le", "0.001"), ("operation", "get"))
    assert found[("cachewatch_cache_operation_duration_seconds_bucket", bucket)] == 3
    (histogram,) = [f for f in families if f.name == "cachewatch_cache_operation_duration_seconds"]
    exemplars = [s.exemplar for s in histogram.samples if s.exemplar is not None]
    assert [e.labels for e in exemplars] == [{"trace_id": "ab" * 16}]


def test_caches_whose_traffic_is_unknown_publish_no_counters() -> None:
    census = CacheSnapshot("keys", "redis", size=50, memory_bytes=5000.0, counts_known=False)
    names = {name for name, _ in _samples(cache_families([census]))}
    assert "cache_size" in names and "cachewatch_cache_memory_bytes" in names
    assert not {"cache_gets_total", "cache_puts_total", "cache_evictions_total"} & names


def test_source_families_say_up_duration_and_failures() -> None:
    class Broken:
        name = "redis"

        def poll(self) -> SourceSnapshot:
            raise TimeoutError("stalled")

        def close(self) -> None:
            return None

    poller = Poller([Broken()])
    snapshots = poller.poll() + poller.poll()
    found = _samples(source_families(snapshots[-1:], poller))
    source = (("source", "redis"),)
    assert found[("cachewatch_source_up", source)] == 0
    assert found[("cachewatch_source_errors_total", source)] == 2
    assert ("cachewatch_source_poll_duration_seconds", source) in found


def test_the_collector_polls_on_every_collection() -> None:
    class Counting:
        name = "counting"
        polls = 0

        def poll(self) -> SourceSnapshot:
            Counting.polls += 1
            cache = CacheSnapshot("c", "counting", hits=Counting.polls)
            return SourceSnapshot("counting", True, 1.0, 0.0, (cache,))

        def close(self) -> None:
            return None

    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(Poller([Counting()])))
    hits = {"cache": "c", "result": "hit"}
    assert registry.get_sample_value("cache_gets_total", hits) == 1
    assert registry.get_sample_value("cache_gets_total", hits) == 2
    assert registry.get_sample_value("cachewatch_build_info", {"version": __version__}) == 1


def test_cache_families_are_kept_while_no_cache_changes() -> None:
    class Steady:
        name = "steady"
        hits = 1

        def poll(self) -> SourceSnapshot:
            cache = CacheSnapshot("c", "steady", hits=Steady.hits, memory_bytes=10.0)
            return SourceSnapshot("steady", True, 1.0, 0.0, (cache,))

        def close(self) -> None:
            return None

    collector = SnapshotCollector(Poller([Steady()]))

    def gets() -> Metric:
        return next(f for f in collector.collect() if f.name == "cache_gets")

    first, again = gets(), gets()
    assert again is first  # equal snapshots: the same frozen family
    Steady.hits = 2
    moved = gets()
    assert moved is not first
    assert _samples([moved])[("cache_gets_total", (("cache", "c"), ("result", "hit")))] == 2
