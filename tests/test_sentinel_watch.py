"""Following a Sentinel-managed master (sources/sentinel_watch.py): real Sentinels and a
master with a replica, both password-protected; SENTINEL FAILOVER moves the master and the
exporter follows within one poll, says so once in its log and in a metric, and the census
carries on to an exact count on the new master."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import requests

from cachewatch.config.files import SENTINEL_MANAGED
from cachewatch.config.redis import RedisSettings, SentinelSettings
from cachewatch.config.redisurl import CachePrefix, parse_sentinel_address
from cachewatch.secret import Secret
from cachewatch.sources.redis import RedisSource

from .scrape import fetch, samples, value
from .servers import LOOPBACK, free_port
from .test_redis import served
from .topology import ReplicaSet, connect, replica_set, wait_until

REDIS_PASSWORD = "redis-pw-7f3a"
SENTINEL_PASSWORD = "sentinel-pw-91c2"


@pytest.fixture(scope="module")
def guarded() -> Iterator[ReplicaSet]:
    with replica_set(
        replicas=1, sentinels=1, password=REDIS_PASSWORD, sentinel_password=SENTINEL_PASSWORD
    ) as group:
        yield group


def _settings(group: ReplicaSet, caches: dict[str, str]) -> RedisSettings:
    dead = parse_sentinel_address(f"{LOOPBACK}:{free_port()}")  # tried first, skipped
    live = parse_sentinel_address(f"{LOOPBACK}:{group.sentinels[0].port}")
    return RedisSettings(
        address=SENTINEL_MANAGED,
        caches=tuple(CachePrefix(name, prefix) for name, prefix in caches.items()),
        password=Secret(REDIS_PASSWORD),
        connect_timeout=1.0,
        socket_timeout=1.0,
        census_keys=300,
        sentinel=SentinelSettings(
            addresses=(dead, live), master_name=group.name, password=Secret(SENTINEL_PASSWORD)
        ),
    )


def _scans(port: int) -> int:
    stats = connect(port, REDIS_PASSWORD).info("commandstats")
    return int(stats.get("cmdstat_scan", {}).get("calls", 0))


def _pass(source: RedisSource) -> None:
    """Census steps until the current pass completes (bounded)."""
    assert source.census is not None
    passes = source.census.report().passes
    for _ in range(50):
        source.census_step()
        if source.census.report().passes > passes:
            return
    raise AssertionError("no full census pass in 50 steps")


def test_follows_the_master_across_a_failover(
    guarded: ReplicaSet, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cachewatch")
    old, new = guarded.master, guarded.replicas[0]
    writer = connect(old.port, REDIS_PASSWORD)
    writer.eval("for i = 1, 1200 do redis.call('SET', 'sess:' .. i, 'v') end", 0)
    wait_until(lambda: connect(new.port, REDIS_PASSWORD).dbsize() == 1200, what="replicated")
    source = RedisSource(_settings(guarded, {"sessions": "sess:"}), start_census=False)
    _pass(source)  # the census asks the Sentinels itself: no poll needed before it counts
    with served(source) as port:
        before = samples(port)
        assert value(before, "redis_up") == 1
        assert _tcp_port(before) == old.port
        name = {"master_name": guarded.name}
        assert (
            value(before, "cachewatch_redis_master_info", **name, address=f"{LOOPBACK}:{old.port}")
            == 1
        )
        assert value(before, "cachewatch_redis_master_switches_total", **name) == 0
        assert value(before, "cachewatch_redis_sentinel_up", **name) == 1
        assert value(samples(port), "cache_size", cache="sessions") == 1200

        sentinel = connect(guarded.sentinels[0].port, SENTINEL_PASSWORD)
        # Sentinel refuses (NOGOODSLAVE) until it has heard from the replica lately: retry.
        wait_until(
            lambda: sentinel.execute_command("SENTINEL", "FAILOVER", guarded.name),
            timeout=40,
            what="Sentinel accepts the failover",
        )
        wait_until(lambda: guarded.current_master_port() == new.port, what="failover done")

        after_text = fetch(port)  # the first poll after the failover
        after = samples(port)
        assert _tcp_port(after) == new.port
        assert (
            value(after, "cachewatch_redis_master_info", **name, address=f"{LOOPBACK}:{new.port}")
            == 1
        )
        assert (
            value(after, "cachewatch_redis_master_info", **name, address=f"{LOOPBACK}:{old.port}")
            is None
        )
        assert value(after, "cachewatch_redis_master_switches_total", **name) == 1
        assert value(after, "redis_connected_slaves") is not None
        # the census carries on: estimates stay published, then exact on the new master
        assert value(after, "cache_size", cache="sessions") == 1200
        assert value(after, "cachewatch_census_coverage_ratio", cache="sessions") <= 1
        scans = _scans(new.port)
        _pass(source)
        assert _scans(new.port) > scans
        final = samples(port)
        assert value(final, "cache_size", cache="sessions") == 1200
        assert value(final, "cachewatch_census_coverage_ratio", cache="sessions") == 1
    moves = [r.getMessage() for r in caplog.records if "moved from" in r.getMessage()]
    moved = f"moved from {LOOPBACK}:{old.port} to {LOOPBACK}:{new.port}"
    assert moves == [f"redis master {guarded.name} {moved} (failover); following it"]
    shown = after_text + caplog.text
    assert REDIS_PASSWORD not in shown and SENTINEL_PASSWORD not in shown


def _tcp_port(found: dict) -> int:  # type: ignore[type-arg]
    for name, labels in found:
        if name == "redis_instance_info":
            return int(dict(labels)["tcp_port"])
    raise AssertionError("no redis_instance_info")


def test_without_any_sentinel_answering_redis_is_down(guarded: ReplicaSet) -> None:
    settings = _settings(guarded, {})
    assert settings.sentinel is not None
    nobody = (parse_sentinel_address(f"{LOOPBACK}:{free_port()}"),)
    settings = RedisSettings(
        address=settings.address,
        password=settings.password,
        connect_timeout=0.5,
        socket_timeout=0.5,
        sentinel=SentinelSettings(nobody, guarded.name, password=Secret(SENTINEL_PASSWORD)),
    )
    source = RedisSource(settings, start_census=False)
    with served(source) as port:
        found = samples(port)
        health = requests.get(f"http://{LOOPBACK}:{port}/health", timeout=10)
    assert value(found, "redis_up") == 0
    assert value(found, "cachewatch_redis_sentinel_up", master_name=guarded.name) == 0
    assert health.status_code == 503
    assert SENTINEL_PASSWORD not in health.text and REDIS_PASSWORD not in health.text
