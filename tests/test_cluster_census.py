"""The census over a Redis Cluster (sources/cluster_census.py): each master counted within
its own budget, the caches summed, exact after every master's full pass."""

from __future__ import annotations

import dataclasses
import math

from cachewatch.config.redisurl import CachePrefix
from cachewatch.sources.census import CacheEstimate, CensusReport
from cachewatch.sources.cluster_census import merge_reports
from cachewatch.sources.cluster_source import ClusterSource

from .redisdata import settings_for
from .topology import Cluster, connect

BUDGET = 400


def _fill(cluster: Cluster) -> dict[str, int]:
    writer = cluster.client()
    writer.flushall()  # every master
    truth = {"users": 2500, "sessions": 900, "tokens": 60}
    prefixes = {"users": "cu:", "sessions": "cs:", "tokens": "ct:"}
    pipe = writer.pipeline()
    for name, count in truth.items():
        for i in range(count):
            pipe.set(f"{prefixes[name]}{i}", "v" * 20)
    pipe.execute()
    return truth


def test_the_census_spans_every_master_and_is_exact_after_a_full_pass(cluster: Cluster) -> None:
    truth = _fill(cluster)
    settings = dataclasses.replace(
        settings_for(cluster.seed, {"users": "cu:", "sessions": "cs:", "tokens": "ct:"},
                     census_keys=BUDGET, census_samples=8),
        cluster=True,
    )  # fmt: skip
    masters = cluster.masters
    keys = {m.port: connect(m.port).dbsize() for m in masters}
    assert all(count > 0 for count in keys.values())  # the keys are spread over the masters
    source = ClusterSource(settings, start_census=False)
    try:
        scans = {m.port: _scans(m.port) for m in masters}
        source.census_step()
        first = source.census.report()  # type: ignore[union-attr]
        assert source.census.masters == 3  # type: ignore[union-attr]
        # each master spends its own budget: three budgets in all, not one shared
        assert 3 * BUDGET * 0.9 <= first.keys_scanned <= 3 * BUDGET * 1.5
        assert all(_scans(m.port) > scans[m.port] for m in masters)  # every master stepped
        steps = 1
        needed = max(math.ceil(count / BUDGET) for count in keys.values()) + 2
        while source.census.report().passes < 1 and steps < needed:  # type: ignore[union-attr]
            source.census_step()
            steps += 1
        report = source.census.report()  # type: ignore[union-attr]
        assert report.passes >= 1
        assert {e.name: e.size for e in report.estimates} == truth
        assert all(e.coverage == 1 for e in report.estimates)
        snapshot = source.poll()
        assert snapshot.up
        assert {c.name: c.size for c in snapshot.caches} == truth
        memory = {c.name: c.memory_bytes for c in snapshot.caches}
        assert all(m is not None and m > 0 for m in memory.values())
    finally:
        source.close()


def _scans(port: int) -> int:
    return int(connect(port).info("commandstats").get("cmdstat_scan", {}).get("calls", 0))


def _report(sizes: list[float], coverage: float, passes: int) -> CensusReport:
    estimates = tuple(
        CacheEstimate(name, size, size * 10, coverage, 100.0, 2, 0.5)
        for name, size in zip(("a", "b"), sizes, strict=True)
    )
    return CensusReport(estimates, coverage, passes, 1000, 5.0, 2.0, 1)


def test_reports_merge_by_summing_and_the_slowest_master_decides() -> None:
    caches = [CachePrefix("a", "a:"), CachePrefix("b", "b:")]
    merged = merge_reports(caches, [_report([10, 20], 1.0, 3), _report([30, 40], 0.5, 0)])
    assert [(e.name, e.size, e.memory_bytes) for e in merged.estimates] == [
        ("a", 40, 400), ("b", 60, 600)
    ]  # fmt: skip
    assert all(e.coverage == 0.5 for e in merged.estimates)
    assert merged.passes == 0 and merged.keys_scanned == 2000 and merged.errors == 2
    assert merged.unmatched == 10 and merged.last_pass_duration == 2.0
    # A master that has not counted yet: no sum that would be too low.
    empty = CensusReport((), 0.0, 0, 0, None, None, 0)
    assert merge_reports(caches, [_report([1, 2], 1.0, 1), empty]).estimates == ()
