"""The key census against a real Redis: exact after a full pass, within bounds before."""

from __future__ import annotations

import math

import redis as redis_py

from cachewatch.config.redisurl import CachePrefix
from cachewatch.sources.census import KeyCensus, cursor_position
from cachewatch.sources.redis import CensusCalls

from .redisdata import calls, client, commandstats, fill
from .servers import RedisServer

TRUTH = {"users": 6000, "sessions": 3000, "tokens": 900, "rare": 40}
PREFIXES = {"users": "user:", "sessions": "session:", "tokens": "tok:", "rare": "rare:"}
UNMATCHED = 500


def _fill(conn: redis_py.Redis) -> None:
    for name, count in TRUTH.items():
        fill(conn, PREFIXES[name], count)
    fill(conn, "other:", UNMATCHED)


def _census(**kwargs: int) -> KeyCensus:
    caches = [CachePrefix(name, prefix) for name, prefix in PREFIXES.items()]
    return KeyCensus(caches, seed=1, **kwargs)  # type: ignore[arg-type]


def test_exact_after_a_full_pass_and_within_bounds_before(redis: RedisServer) -> None:
    conn = client(redis)
    _fill(conn)
    total = sum(TRUTH.values()) + UNMATCHED
    census = _census(keys_per_step=500, samples_per_step=8)
    calls_ = CensusCalls(conn)
    before = commandstats(conn)
    steps = 0
    while census.report().passes == 0:
        census.step(calls_)
        steps += 1
        assert steps < 100
        report = census.report()
        if report.passes:
            break
        p = report.progress
        assert 0 < p < 1
        for estimate in report.estimates:
            truth = TRUTH[estimate.name]
            # The part of the hash space seen is a uniform sample of the keys: 6 sigma.
            sigma = math.sqrt(truth * (1 - p) / p)
            assert abs(estimate.size - truth) <= 6 * sigma + 2, (estimate, p)
            assert estimate.coverage == p
    after = commandstats(conn)
    report = census.report()
    sizes = {e.name: e.size for e in report.estimates}
    assert sizes == TRUTH
    assert report.unmatched == UNMATCHED
    assert all(e.coverage == 1.0 for e in report.estimates)
    assert report.keys_scanned >= total
    # The budget holds: a full pass takes about total / budget steps, never one big call.
    assert steps >= total // 600
    assert calls(before, after, "scan") >= steps
    assert calls(before, after, "keys") == 0
    assert report.last_pass_duration is not None and report.last_pass_duration > 0


def test_memory_is_exact_when_every_key_is_measured(redis: RedisServer) -> None:
    conn = client(redis)
    fill(conn, "small:", 300, size=10)
    fill(conn, "big:", 200, size=2000)
    census = KeyCensus(
        [CachePrefix("small", "small:"), CachePrefix("big", "big:")],
        keys_per_step=100_000,
        samples_per_step=100_000,
    )
    census.step(CensusCalls(conn))
    report = census.report()
    assert report.passes == 1
    truth = {
        prefix: sum(conn.memory_usage(key) or 0 for key in conn.scan_iter(match=f"{prefix}:*"))
        for prefix in ("small", "big")
    }
    for estimate in report.estimates:
        assert estimate.memory_bytes == truth[estimate.name]
        assert estimate.sample_ratio == 1.0
        assert estimate.sampled_keys == {"small": 300, "big": 200}[estimate.name]


def test_sampled_memory_is_close(redis: RedisServer) -> None:
    conn = client(redis)
    for size in (100, 200, 300, 400):
        fill(conn, f"mixed:{size}:", 1000, size=size)
    census = KeyCensus(
        [CachePrefix("mixed", "mixed:")], keys_per_step=400, samples_per_step=20, seed=3
    )
    while census.report().passes == 0:
        census.step(CensusCalls(conn))
    estimate = census.report().estimates[0]
    truth = sum(conn.memory_usage(key) or 0 for key in conn.scan_iter(match="mixed:*", count=1000))
    assert estimate.size == 4000
    assert 0 < estimate.sample_ratio < 0.2
    assert abs(estimate.memory_bytes - truth) / truth < 0.15  # type: ignore[operator]


def test_sliding_window_follows_change_and_is_exact_again_after_a_pass(
    redis: RedisServer,
) -> None:
    conn = client(redis)
    _fill(conn)
    census = _census(keys_per_step=1000, samples_per_step=0)
    calls_ = CensusCalls(conn)
    while census.report().passes < 1:
        census.step(calls_)
    fill(conn, "user:new-", 2000)
    census.step(calls_)
    middle = {e.name: e for e in census.report().estimates}
    assert TRUTH["users"] <= middle["users"].size <= TRUTH["users"] + 2000
    assert middle["users"].coverage == 1.0 and middle["users"].memory_bytes is None
    while census.report().passes < 2:
        census.step(calls_)
    sizes = {e.name: e.size for e in census.report().estimates}
    assert sizes == {**TRUTH, "users": TRUTH["users"] + 2000}


def test_scan_cursor_positions_increase_through_a_pass(redis: RedisServer) -> None:
    conn = client(redis)
    fill(conn, "k:", 5000)
    cursor, positions = 0, []
    while True:
        cursor, _ = conn.scan(cursor, count=100)
        positions.append(cursor_position(cursor))
        if cursor == 0:
            break
    assert positions == sorted(positions)
    assert positions[-1] == 1.0 and 0 < positions[len(positions) // 2] < 1


def test_empty_database_is_exact_zero(redis: RedisServer) -> None:
    census = _census()
    census.step(CensusCalls(client(redis)))
    report = census.report()
    assert report.passes == 1
    assert {e.size for e in report.estimates} == {0}


def test_longest_prefix_wins(redis: RedisServer) -> None:
    conn = client(redis)
    fill(conn, "user:", 100)
    fill(conn, "user:session:", 30)
    census = KeyCensus(
        [CachePrefix("users", "user:"), CachePrefix("user_sessions", "user:session:")]
    )
    census.step(CensusCalls(conn))
    assert {e.name: e.size for e in census.report().estimates} == {
        "users": 100, "user_sessions": 30,
    }  # fmt: skip


def test_memory_sampling_keeps_its_budget_with_many_caches(redis: RedisServer) -> None:
    conn = client(redis)
    caches = [CachePrefix(f"c{i}", f"c{i}:") for i in range(20)]
    for cache in caches:
        fill(conn, cache.prefix, 30)
    census = KeyCensus(caches, keys_per_step=100_000, samples_per_step=5)
    before = commandstats(conn)
    for _ in range(4):
        census.step(CensusCalls(conn))
    after = commandstats(conn)
    assert calls(before, after, "memory|usage") == 4 * 5
    # The caches took turns: every one has a memory estimate, from its own samples.
    for estimate in census.report().estimates:
        keys = conn.scan_iter(match=f"{estimate.name}:*")
        truth = sum(conn.memory_usage(key) or 0 for key in keys)
        assert estimate.memory_bytes is not None
        assert abs(estimate.memory_bytes - truth) <= 0.1 * truth, estimate


def test_census_families_are_kept_between_steps_but_the_age() -> None:
    from cachewatch.exposition.encoders import render_text
    from cachewatch.sources.census import (
        CacheEstimate,
        CensusFamilies,
        CensusReport,
        census_families,
    )

    estimate = CacheEstimate("users", 120, 4096.0, 0.5, 1000.0, 32, 0.25)
    report = CensusReport((estimate,), 0.5, 1, 2000, 0.1, None, 0)
    kept = CensusFamilies()
    first, later = kept.families(report, now=1010.0), kept.families(report, now=1020.0)
    assert render_text(first) == render_text(census_families(report, now=1010.0))
    assert render_text(later) == render_text(census_families(report, now=1020.0))
    ages = [f for f in later if f.name == "cachewatch_census_age_seconds"]
    assert ages[0].samples[0].value == 20.0
    assert all(a is b for a, b in zip(first, later, strict=True) if a.name != ages[0].name)
    stepped = CensusReport((estimate,), 0.75, 1, 3000, 0.1, None, 0)
    moved = kept.families(stepped, now=1020.0)
    assert render_text(moved) == render_text(census_families(stepped, now=1020.0))
