"""One lookup counts once: every documented way of nesting the wrappers inside
``trace_cache_operation``, against a real redis-server, with tracing off and on."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Iterator

import pytest
import redis as redispy
import redis.asyncio as aioredis

import cachewatch
from cachewatch import CacheRegistry
from cachewatch.instrument import nesting
from cachewatch.tracing import spans as tracing_state

from .otlp_receiver import otlp_receiver
from .servers import RedisServer, redis_server

CACHES = {"search_cache": "search:", "embedding_cache": "embedding:"}


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
def client(shared_redis: RedisServer, cache_table: CacheRegistry) -> Iterator[redispy.Redis]:
    plain = redispy.Redis.from_url(shared_redis.url, decode_responses=True)
    plain.flushdb()
    yield cachewatch.instrument_redis(plain, CACHES, registry=cache_table)
    plain.close()


def counts(registry: CacheRegistry, name: str) -> tuple[int, int, int, int]:
    snap = registry.recorder(name).snapshot()
    return snap.hits, snap.misses, snap.puts, snap.removals


def timed(registry: CacheRegistry, name: str) -> dict[str, int]:
    """Latency observations per operation."""
    latency = registry.recorder(name).snapshot().latency
    return {op: h.count for op, h in latency.items() if h.count}


def operation(cache: str, registry: CacheRegistry, op: str = "get") -> cachewatch.CacheOperation:
    return cachewatch.trace_cache_operation(op, cache, "k", registry=registry)


# --- the combination docs/tracing.md shows: an instrument_redis() client inside an operation -
def test_redis_lookup_inside_an_operation_counts_once(
    client: redispy.Redis, cache_table: CacheRegistry
) -> None:
    client.set("search:hit", "v")  # one put, outside any operation
    with operation("search_cache", cache_table) as op:
        op.result(client.get("search:hit"))
    with operation("search_cache", cache_table) as op:
        op.result(client.get("search:absent"))
    assert counts(cache_table, "search_cache") == (1, 1, 1, 0)
    # one latency observation per lookup: the operation's, which includes the command
    assert timed(cache_table, "search_cache") == {"set": 1, "get": 2}
    assert nesting.OPEN == [] and cache_table.recorder("search_cache").claims == []


def test_without_an_outcome_the_operation_counts_what_the_command_saw(
    client: redispy.Redis, cache_table: CacheRegistry
) -> None:
    with operation("search_cache", cache_table, "lookup"):
        client.mget("search:a", "search:b")
    assert counts(cache_table, "search_cache") == (0, 2, 0, 0)
    assert timed(cache_table, "search_cache") == {"lookup": 1}


def test_read_through_counts_the_miss_once_and_the_fill_as_a_put(
    client: redispy.Redis, cache_table: CacheRegistry
) -> None:
    with operation("search_cache", cache_table) as op:
        value = op.result(client.get("search:q"))
        if value is None:
            client.set("search:q", "computed")
    assert counts(cache_table, "search_cache") == (0, 1, 1, 0)


def test_a_set_operation_around_a_set_command_is_one_put(
    client: redispy.Redis, cache_table: CacheRegistry
) -> None:
    with operation("search_cache", cache_table, "set"):
        client.set("search:x", "1")
    with operation("search_cache", cache_table, "delete"):
        client.delete("search:x")
    assert counts(cache_table, "search_cache") == (0, 0, 1, 1)


def test_pipeline_inside_an_operation(client: redispy.Redis, cache_table: CacheRegistry) -> None:
    client.set("search:p", "1")
    with operation("search_cache", cache_table) as op, client.pipeline() as pipe:
        pipe.get("search:p").get("search:none")
        op.result(pipe.execute()[0])
    assert counts(cache_table, "search_cache") == (1, 0, 1, 0)
    assert "pipeline" not in timed(cache_table, "search_cache")


def test_asyncio_client_inside_an_operation(
    shared_redis: RedisServer, cache_table: CacheRegistry
) -> None:
    async def scenario() -> None:
        plain = aioredis.Redis.from_url(shared_redis.url, decode_responses=True)
        client = cachewatch.instrument_redis(plain, CACHES, registry=cache_table)
        try:
            await client.set("search:async", "1")
            with operation("search_cache", cache_table) as op:
                op.result(await client.get("search:async"))

            async def inner_lookup() -> None:  # a task started inside inherits the claim
                await client.get("search:gone")

            with operation("search_cache", cache_table):
                await asyncio.gather(asyncio.create_task(inner_lookup()))
        finally:
            await plain.aclose()

    asyncio.run(scenario())
    assert counts(cache_table, "search_cache") == (1, 1, 1, 0)


# --- the other wrappers inside an operation ---------------------------------------------------
def test_instrumented_mapping_inside_an_operation(cache_table: CacheRegistry) -> None:
    local = cachewatch.instrument({"a": 1}, "search_cache", registry=cache_table)
    with operation("search_cache", cache_table) as op:
        op.result(local.get("a"))
    with operation("search_cache", cache_table) as op:
        op.result(local.get("b"))
    with operation("search_cache", cache_table), pytest.raises(KeyError):
        local["b"]  # no outcome given: the mapping's miss is the operation's
    with operation("search_cache", cache_table, "set"):
        local["c"] = 3
    with operation("search_cache", cache_table) as op:
        op.result(local.setdefault("d", 4))  # a miss and a put: the put is kept
    assert counts(cache_table, "search_cache") == (2, 2, 2, 0)
    assert timed(cache_table, "search_cache") == {"get": 4, "set": 1}
    local.get("a")  # outside: counted by the mapping as usual
    assert counts(cache_table, "search_cache")[0] == 3


def test_operation_inside_an_operation_of_the_same_cache(cache_table: CacheRegistry) -> None:
    with operation("search_cache", cache_table) as outer:
        with operation("search_cache", cache_table) as inner:
            inner.miss()
        outer.hit()  # the outer one says how the lookup went
    with (
        operation("search_cache", cache_table, "fetch"),
        operation("search_cache", cache_table) as i,
    ):
        i.miss()  # the outer one has no outcome: the inner one's counts
    assert counts(cache_table, "search_cache") == (1, 1, 0, 0)
    assert timed(cache_table, "search_cache") == {"get": 1, "fetch": 1}


def test_watch_lru_inside_an_operation(cache_table: CacheRegistry) -> None:
    @functools.lru_cache(maxsize=8)
    def load(project: int) -> int:
        return project * 2

    cachewatch.watch_lru(load, "project_cache", registry=cache_table)
    with operation("project_cache", cache_table) as op:
        op.result(load(1))  # a miss, by cache_info()
    with operation("project_cache", cache_table) as op:
        op.result(load(1))  # a hit
    assert counts(cache_table, "project_cache")[:2] == (1, 1)
    assert timed(cache_table, "project_cache") == {"get": 2}


def test_recorder_api_inside_an_operation(cache_table: CacheRegistry) -> None:
    files = cachewatch.cache_metrics("file_cache", registry=cache_table)
    with operation("file_cache", cache_table) as op:
        files.miss()
        with files.time("read"):
            pass
        op.miss()
    with operation("file_cache", cache_table):
        files.hit()
    assert counts(cache_table, "file_cache") == (1, 1, 0, 0)
    assert timed(cache_table, "file_cache") == {"get": 2}


def test_other_caches_inside_an_operation_count_as_their_own_lookups(
    client: redispy.Redis, cache_table: CacheRegistry
) -> None:
    local = cachewatch.instrument({}, "local_cache", registry=cache_table)
    with operation("search_cache", cache_table) as op:
        local.get("x")  # an L1 miss ...
        client.get("embedding:v")  # ... another cache's miss ...
        op.result(client.get("search:x"))  # ... and the operation's own
    assert counts(cache_table, "local_cache")[:2] == (0, 1)
    assert counts(cache_table, "embedding_cache")[:2] == (0, 1)
    assert counts(cache_table, "search_cache")[:2] == (0, 1)


# --- errors -----------------------------------------------------------------------------------
def test_errors_count_once(client: redispy.Redis, cache_table: CacheRegistry) -> None:
    client.hset("search:hash", "f", "v")
    with pytest.raises(redispy.ResponseError), operation("search_cache", cache_table) as op:
        op.result(client.get("search:hash"))  # WRONGTYPE, raised through the operation
    with operation("search_cache", cache_table) as op:
        try:
            client.get("search:hash")  # fails, caught ...
        except redispy.ResponseError:
            op.result(client.get("search:fallback"))  # ... and a retry that misses
    snap = cache_table.recorder("search_cache").snapshot()
    assert snap.errors == {("get", "ResponseError"): 2}
    assert (snap.hits, snap.misses) == (0, 1)


# --- contexts ---------------------------------------------------------------------------------
def test_another_thread_counts_its_own_lookups_while_an_operation_is_open(
    client: redispy.Redis, cache_table: CacheRegistry
) -> None:
    started, finish = threading.Event(), threading.Event()

    def hold_open() -> None:
        with operation("search_cache", cache_table) as op:
            started.set()
            finish.wait(10)
            op.hit()

    holder = threading.Thread(target=hold_open)
    holder.start()
    try:
        assert started.wait(10)
        local = cachewatch.instrument({}, "search_cache", registry=cache_table)
        for _ in range(3):
            client.get("search:other-thread")
            local.get("nothing")
    finally:
        finish.set()
        holder.join(10)
    assert counts(cache_table, "search_cache")[:2] == (1, 6)


def test_a_task_that_outlives_its_operation_counts_on_the_cache(
    client: redispy.Redis, cache_table: CacheRegistry
) -> None:
    recorder = cache_table.recorder("search_cache")
    with operation("search_cache", cache_table) as op:
        claim = nesting.claim_on(recorder)
        op.hit()
    assert claim is not None and not claim.open
    claim.count(misses=1)  # recorded after the block closed: not lost
    assert counts(cache_table, "search_cache")[:2] == (1, 1)


# --- with tracing on --------------------------------------------------------------------------
def test_counts_are_the_same_with_tracing_on_and_spans_nest(
    client: redispy.Redis, cache_table: CacheRegistry
) -> None:
    with otlp_receiver() as receiver:
        env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint}
        env["OTEL_BSP_SCHEDULE_DELAY"] = "100"
        assert tracing_state.setup_tracing(env, set_global=False) is not None
        try:
            local = cachewatch.instrument({"a": 1}, "search_cache", registry=cache_table)
            with operation("search_cache", cache_table) as op:
                op.result(local.get("a"))
            with operation("search_cache", cache_table):
                client.get("search:traced")  # the span learns the outcome from inside
            spans = receiver.wait_for(lambda s: len(s) >= 4)
        finally:
            tracing_state.shutdown_tracing()
    assert counts(cache_table, "search_cache")[:2] == (1, 1)
    assert timed(cache_table, "search_cache") == {"get": 2}
    operations = [s for s in spans if s.name == "get search_cache" and not s.parent_span_id]
    assert sorted(s.attributes["cachewatch.cache.hit"] for s in operations) == [False, True]
    by_id = {s.span_id: s for s in spans}
    command = next(s for s in spans if s.name == "GET search_cache")
    assert by_id[command.parent_span_id].attributes["cachewatch.cache.hit"] is False
