"""The Redis source served on /metrics: values, logical caches, single flight, CONFIG and
MEMORY forbidden, promtool, and the names redis_exporter publishes."""

from __future__ import annotations

import logging
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from cachewatch import catalog
from cachewatch.exporter import Exporter
from cachewatch.instrument.table import CacheTable
from cachewatch.secret import Secret
from cachewatch.sources.local import LocalSource
from cachewatch.sources.redis import RedisSource
from cachewatch.web.routes import make_wsgi_app
from cachewatch.web.server import serve

from . import parity
from .redisdata import calls, client, commandstats, fill, settings_for
from .scrape import fetch, samples, value
from .servers import RedisServer, redis_server, require_binary, valkey_binary


@contextmanager
def served(source: RedisSource) -> Iterator[int]:
    registry = CacheTable()
    exporter = Exporter([source, LocalSource(registry)], caches=registry)
    server = serve(make_wsgi_app(exporter), "127.0.0.1", 0)
    try:
        yield server.port
    finally:
        server.shutdown()
        exporter.close()


def test_metrics_equal_info_and_caches_come_from_the_census(redis: RedisServer) -> None:
    conn = client(redis)
    fill(conn, "user:", 2000)
    fill(conn, "session:", 700)
    conn.config_set("maxmemory", 64 * 1024 * 1024)
    source = RedisSource(
        settings_for(redis, {"users": "user:", "sessions": "session:"}, census_keys=100_000),
        start_census=False,
    )
    source.census_step()  # one full pass at this budget
    with served(source) as port:
        before = conn.info("all")
        found = samples(port)
        after = conn.info("all")
    assert value(found, "redis_up") == 1
    assert value(found, "cachewatch_source_up", source="redis") == 1
    assert value(found, "cache_size", cache="users") == 2000
    assert value(found, "cache_size", cache="sessions") == 700
    # the census sees contents, not traffic: no made-up zero counters for these caches
    assert value(found, "cache_gets_total", cache="users", result="hit") is None
    assert value(found, "cache_evictions_total", cache="users") is None
    assert value(found, "cachewatch_census_coverage_ratio", cache="users") == 1
    assert value(found, "cachewatch_cache_memory_bytes", cache="users") > 2000 * 16
    assert value(found, "redis_memory_max_bytes") == 64 * 1024 * 1024
    assert value(found, "redis_config_maxmemory") == 64 * 1024 * 1024
    assert value(found, "cachewatch_redis_config_readable") == 1
    assert value(found, "redis_db_keys", db="db0") == 2700
    assert value(found, "redis_db_keys", db="db15") == 0  # every configured database
    # Counters and gauges lie between the INFO read just before and just after the scrape.
    for entry in catalog.REDIS_INFO_FIELDS:
        if entry.field not in before or not isinstance(before[entry.field], (int, float)):
            continue
        got = value(found, entry.spec.sample_name)
        low, high = sorted((before[entry.field] * entry.scale, after[entry.field] * entry.scale))
        if entry.field.startswith(("used_memory", "mem_", "allocator_", "rss_")):
            low, high = low * 0.9, high * 1.1  # memory moves with the scrape's own buffers
        assert got is not None and low <= got <= high, (entry.spec.name, got, low, high)


@pytest.fixture
def debug_redis() -> Iterator[RedisServer]:
    """A Redis that accepts DEBUG SLEEP (to hold it busy for a moment)."""
    with redis_server(["--enable-debug-command", "yes"]) as server:
        yield server


def test_concurrent_scrapes_cost_one_round_of_redis_calls(debug_redis: RedisServer) -> None:
    redis = debug_redis
    conn = client(redis)
    source = RedisSource(settings_for(redis, socket_timeout=5.0), start_census=False)
    with served(source) as port:
        fetch(port)  # connect and read CONFIG once
        rounds = source.rounds
        stats_before = commandstats(conn)
        # Hold Redis busy so that every scrape arrives while the first is still waiting.
        blocker = client(redis)
        hold = threading.Thread(target=blocker.execute_command, args=("DEBUG", "SLEEP", "0.6"))
        hold.start()
        time.sleep(0.1)
        results: list[str] = []
        threads = [threading.Thread(target=lambda: results.append(fetch(port))) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        hold.join(10)
        stats_after = commandstats(conn)
    assert len(results) == 8
    assert all("redis_up 1.0" in text for text in results)
    assert source.rounds - rounds == 1
    assert calls(stats_before, stats_after, "info") == 1 + 1  # one poll + our own INFO


def test_config_forbidden_carries_on(redis: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cachewatch")
    conn = client(redis)
    conn.execute_command("ACL", "SETUSER", "watcher", "on", ">watchpw", "~*", "+@all", "-config")
    fill(conn, "a:", 50)
    settings = settings_for(redis, {"a": "a:"}, username="watcher", password=Secret("watchpw"))
    source = RedisSource(settings, start_census=False)
    source.census_step()
    with served(source) as port:
        first, second = samples(port), samples(port)
    for found in (first, second):
        assert value(found, "redis_up") == 1
        assert value(found, "cachewatch_redis_config_readable") == 0
        assert value(found, "redis_memory_max_bytes") == 0  # still known from INFO
        assert value(found, "redis_config_maxmemory") is None
        assert value(found, "cache_size", cache="a") == 50
    notes = [r for r in caplog.records if "CONFIG GET is not allowed" in r.getMessage()]
    assert len(notes) == 1


def test_memory_usage_forbidden_leaves_memory_unknown(redis: RedisServer) -> None:
    conn = client(redis)
    conn.execute_command("ACL", "SETUSER", "nomem", "on", ">pw", "~*", "+@all", "-memory")
    fill(conn, "a:", 50)
    source = RedisSource(
        settings_for(redis, {"a": "a:"}, username="nomem", password=Secret("pw")),
        start_census=False,
    )
    source.census_step()
    with served(source) as port:
        found = samples(port)
    assert value(found, "cache_size", cache="a") == 50
    assert value(found, "cachewatch_cache_memory_bytes", cache="a") is None
    assert value(found, "cachewatch_census_memory_sampled_keys", cache="a") == 0


def test_census_thread_runs_in_the_background(redis: RedisServer) -> None:
    fill(client(redis), "bg:", 300)
    source = RedisSource(settings_for(redis, {"bg": "bg:"}, census_interval=0.05))
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            report = source.census.report()  # type: ignore[union-attr]
            if report.passes:
                break
            time.sleep(0.05)
        assert report.passes >= 1
        assert {e.name: e.size for e in report.estimates} == {"bg": 300}
    finally:
        source.close()


def test_promtool_accepts_the_output(redis: RedisServer) -> None:
    fill(client(redis), "user:", 100)
    source = RedisSource(settings_for(redis, {"users": "user:"}), start_census=False)
    source.census_step()
    with served(source) as port:
        text = fetch(port)
    result = subprocess.run(
        [require_binary("promtool"), "check", "metrics"],
        input=text.encode(),
        capture_output=True,
        timeout=30,
    )
    problems = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0, problems
    assert "redis_up 1.0" in text and 'cache_size{cache="users"} 100.0' in text


@pytest.fixture(params=["aof-off", "aof-on", "valkey"])
def standalone(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """A standalone server: Redis without persistence, Redis with AOF, and Valkey."""
    extra = ["--appendonly", "yes"] if request.param == "aof-on" else []
    binary = valkey_binary() if request.param == "valkey" else None
    with redis_server(extra, binary=binary) as server:
        yield server


def test_names_match_redis_exporter(standalone: RedisServer) -> None:
    """Every series Debian's redis_exporter publishes for a standalone server (AOF off, AOF
    on, Valkey), cachewatch publishes too, with the same labels; stable values agree."""
    redis = standalone
    conn = client(redis)
    fill(conn, "user:", 10)
    conn.get("nothing")
    theirs_text = parity.theirs(redis.url)
    source = RedisSource(settings_for(redis), start_census=False)
    with served(source) as cw_port:
        ours_text = fetch(cw_port)
    assert len(parity.series(theirs_text)) > 100
    assert parity.missing(theirs_text, ours_text) == {}
    aof_size = re.search(r"^redis_aof_current_size_bytes (\S+)$", ours_text, re.MULTILINE)
    if conn.info("persistence")["aof_enabled"]:
        assert aof_size is not None and float(aof_size.group(1)) > 0
    else:
        assert aof_size is None  # INFO has no AOF sizes while AOF is off

    # Same meanings: values that do not move between the two scrapes agree.
    def sample(text: str, name: str) -> float:
        match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
        assert match, name
        return float(match.group(1))

    for name in (
        "redis_memory_max_bytes",
        "redis_keyspace_misses_total",
        "redis_process_id",
        "redis_aof_enabled",
        "redis_rdb_last_bgsave_status",
        "redis_start_time_seconds",
        "redis_config_maxclients",
    ):
        assert abs(sample(ours_text, name) - sample(theirs_text, name)) <= 1.0, name


# Names current redis_exporter (upstream, newer than Debian's 1.45) gives the INFO fields of
# Redis 7.2+ and Valkey 8+, and the labels it adds to redis_instance_info on Valkey: read
# from its exporter.go and info.go. Valkey 9 has all of these fields.
UPSTREAM_ONLY = (
    "redis_pubsub_clients", "redis_watching_clients", "redis_total_watched_keys",
    "redis_total_blocking_keys", "redis_total_blocking_keys_on_nokey",
    "redis_allocator_muzzy_bytes", "redis_mem_overhead_db_hashtable_rehashing_bytes",
    "redis_evicted_scripts_total", "redis_client_query_buffer_limit_disconnections_total",
    "redis_client_output_buffer_limit_disconnections_total", "redis_reply_buffer_shrinks_total",
    "redis_reply_buffer_expands_total", "redis_acl_access_denied_auth_total",
    "redis_acl_access_denied_cmd_total", "redis_acl_access_denied_key_total",
    "redis_acl_access_denied_channel_total", "redis_active_time_main_thread_seconds_total",
    "redis_memory_used_vm_eval_bytes", "redis_mem_total_replication_buffers_bytes",
    "redis_rdb_saves_total", "redis_hz", "redis_configured_hz", "redis_config_repl_backlog_size",
)  # fmt: skip


def test_valkey_gets_current_upstream_names_and_labels() -> None:
    with redis_server(binary=valkey_binary()) as valkey:
        source = RedisSource(settings_for(valkey), start_census=False)
        with served(source) as port:
            found = samples(port)
    names = {name for name, _ in found}
    assert set(UPSTREAM_ONLY) - names == set()
    info = [dict(labels) for name, labels in found if name == "redis_instance_info"]
    assert len(info) == 1
    assert info[0]["valkey_version"].startswith("9.") and info[0]["valkey_release_stage"]
    assert info[0]["redis_mode"] == "standalone"  # from Valkey's server_mode
    assert len(info[0]["master_replid"]) == 40
