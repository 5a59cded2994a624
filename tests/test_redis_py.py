"""redis-py instrumentation against a real redis-server: exact counts per key prefix,
pipelines (sync and asyncio), errors, the bounded fallback, and spans at a real receiver."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
import redis as redispy
import redis.asyncio as aioredis

import cachewatch
from cachewatch import CacheRegistry
from cachewatch.snapshot import CacheSnapshot
from cachewatch.tracing import spans as tracing_state
from cachewatch.web.server import HttpServer

from .otlp_receiver import OtlpReceiver, otlp_receiver
from .scrape import samples, value
from .servers import RedisServer, redis_server

CACHES = {"embedding_cache": "embedding:", "search_cache": ["search:", b"query:"]}


def counts(registry: CacheRegistry, name: str) -> tuple[int, int, int, int]:
    snap: CacheSnapshot = registry.recorder(name).snapshot()
    return snap.hits, snap.misses, snap.puts, snap.removals


@pytest.fixture
def client(redis: RedisServer, cache_table: CacheRegistry) -> Iterator[redispy.Redis]:
    plain = redispy.Redis.from_url(redis.url, decode_responses=True)
    yield cachewatch.instrument_redis(plain, CACHES, registry=cache_table)
    plain.close()


def test_single_commands_are_counted_per_prefix(
    client: redispy.Redis, cache_table: CacheRegistry, http: HttpServer
) -> None:
    client.set("embedding:a", "1")
    client.execute_command("SETEX", "embedding:b", 60, "2")
    client.set("embedding:a", "again", nx=True)  # not stored: no put
    assert client.get("embedding:a") == "1"
    assert client.get("embedding:zzz") is None
    assert client.get("search:x") is None
    client.mset({"search:x": "3", "query:y": "4", "misc:1": "5"})
    assert client.mget(["embedding:a", "embedding:nope", "search:x", "query:y", "misc:1"]) == [
        "1", None, "3", "4", "5",
    ]  # fmt: skip
    client.hset("embedding:h", "field", "v")
    assert client.hget("embedding:h", "field") == "v"
    assert client.hget("embedding:h", "other") is None
    assert client.exists("embedding:a", "embedding:b", "embedding:none") == 2
    assert client.delete("embedding:a", "embedding:never") == 1
    assert client.unlink("search:x") == 1
    assert client.getdel("embedding:b") == "2"

    # embedding: hits a, a(mget), h.field, exists x2, getdel b = 6; misses zzz, nope,
    # h.other, exists none = 4; puts a, b, h = 3; removals del a + getdel b = 2
    assert counts(cache_table, "embedding_cache") == (6, 4, 3, 2)
    # search: miss x; mset x, y; mget hits x, y; unlink x
    assert counts(cache_table, "search_cache") == (2, 1, 2, 1)
    assert counts(cache_table, "unmatched") == (1, 0, 1, 0)

    found = samples(http.port)
    assert value(found, "cache_gets_total", cache="embedding_cache", result="hit") == 6
    assert value(found, "cache_gets_total", cache="search_cache", result="miss") == 1
    assert value(found, "cachewatch_cache_operation_duration_seconds_count",
                 cache="embedding_cache", operation="get") == 2  # fmt: skip
    assert value(found, "cachewatch_cache_operation_duration_seconds_count",
                 cache="search_cache", operation="mget") == 1  # fmt: skip


def test_unmatched_keys_share_one_bounded_name(
    client: redispy.Redis, cache_table: CacheRegistry
) -> None:
    for i in range(50):
        client.get(f"user:{i}:profile")
    assert {r.name for r in cache_table.recorders()} == {
        "embedding_cache", "search_cache", "unmatched",
    }  # fmt: skip
    assert counts(cache_table, "unmatched") == (0, 50, 0, 0)


def test_fallback_none_ignores_unmatched_keys(
    redis: RedisServer, cache_table: CacheRegistry
) -> None:
    plain = redispy.Redis.from_url(redis.url)
    client = cachewatch.instrument_redis(plain, {"e": "e:"}, fallback=None, registry=cache_table)
    client.set(b"e:1", b"x")
    client.get("other")
    assert client.get(b"e:1") == b"x"  # bytes keys match too
    assert {r.name for r in cache_table.recorders()} == {"e"}
    assert counts(cache_table, "e") == (1, 0, 1, 0)
    plain.close()


def test_errors_are_counted_and_raised(client: redispy.Redis, cache_table: CacheRegistry) -> None:
    client.hset("embedding:hash", "f", "v")
    with pytest.raises(redispy.ResponseError):
        client.get("embedding:hash")  # WRONGTYPE
    snap = cache_table.recorder("embedding_cache").snapshot()
    assert snap.errors == {("get", "ResponseError"): 1}
    assert (snap.hits, snap.misses) == (0, 0)


@pytest.mark.parametrize("transaction", [True, False])
def test_pipelines_count_each_command_by_its_reply(
    client: redispy.Redis, cache_table: CacheRegistry, transaction: bool
) -> None:
    client.set("embedding:present", "1")
    with client.pipeline(transaction=transaction) as pipe:
        pipe.get("embedding:present").get("embedding:absent").set("search:new", "x")
        pipe.mget("search:new", "search:none").delete("embedding:present")
        assert pipe.execute() == ["1", None, True, ["x", None], 1]
    assert counts(cache_table, "embedding_cache") == (1, 1, 1, 1)
    assert counts(cache_table, "search_cache") == (1, 1, 1, 0)
    latency = cache_table.recorder("search_cache").snapshot().latency
    assert latency["pipeline"].count == 1 and "mget" not in latency


def test_pipeline_command_errors_are_counted_per_command(
    client: redispy.Redis, cache_table: CacheRegistry
) -> None:
    client.hset("search:hash", "f", "v")
    pipe = client.pipeline(transaction=False)
    pipe.get("search:hash").get("search:missing")
    results = pipe.execute(raise_on_error=False)
    assert isinstance(results[0], redispy.ResponseError) and results[1] is None
    snap = cache_table.recorder("search_cache").snapshot()
    assert snap.errors == {("get", "ResponseError"): 1}
    assert (snap.hits, snap.misses) == (0, 1)


def test_watch_transactions_are_counted(client: redispy.Redis, cache_table: CacheRegistry) -> None:
    client.set("embedding:n", "1")

    def bump(pipe: redispy.client.Pipeline) -> None:
        current = pipe.get("embedding:n")  # immediate, while watching
        pipe.multi()
        pipe.set("embedding:n", str(int(current or 0) + 1))

    client.transaction(bump, "embedding:n")
    assert client.get("embedding:n") == "2"
    assert counts(cache_table, "embedding_cache") == (2, 0, 2, 0)


def test_asyncio_client_and_pipelines(redis: RedisServer, cache_table: CacheRegistry) -> None:
    async def scenario() -> list[object]:
        plain = aioredis.Redis.from_url(redis.url, decode_responses=True)
        client = cachewatch.instrument_redis(plain, CACHES, registry=cache_table)
        try:
            await client.set("embedding:a", "1")
            await client.get("embedding:a")
            await client.get("search:none")
            await client.mget("embedding:a", "query:q")
            async with client.pipeline(transaction=True) as pipe:
                pipe.set("query:q", "2").get("query:q").get("embedding:gone").unlink("embedding:a")
                results: list[object] = await pipe.execute()
            with pytest.raises(redispy.ResponseError):
                await client.hget("query:q", "f")  # WRONGTYPE
            return results
        finally:
            await plain.aclose()

    assert asyncio.run(scenario()) == [True, "2", None, 1]
    # embedding: hits get a, mget a; pipeline miss gone; put a; unlink a
    assert counts(cache_table, "embedding_cache") == (2, 1, 1, 1)
    # search: miss none, mget miss q; pipeline put q, hit q
    assert counts(cache_table, "search_cache") == (1, 2, 1, 0)
    errors = cache_table.recorder("search_cache").snapshot().errors
    assert errors == {("hget", "ResponseError"): 1}


def test_instrument_redis_rejects_what_is_not_a_client(cache_table: CacheRegistry) -> None:
    with pytest.raises(TypeError, match=r"redis\.Redis"):
        cachewatch.instrument_redis({}, CACHES, registry=cache_table)
    with pytest.raises(ValueError, match="prefix"):
        cachewatch.instrument_redis(redispy.Redis(), {"x": ""}, registry=cache_table)


# --- spans ------------------------------------------------------------------------------------
@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as running:
        yield running


def test_redis_spans_carry_db_attributes_and_never_credentials(
    receiver: OtlpReceiver, cache_table: CacheRegistry
) -> None:
    with redis_server(extra=["--requirepass", "s3cret-pw"]) as server:
        url = f"redis://:s3cret-pw@127.0.0.1:{server.port}/3"
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_SERVICE_NAME": "api",
        }
        assert tracing_state.setup_tracing(env, set_global=False, record_keys=True) is not None
        plain = redispy.Redis.from_url(url)
        try:
            client = cachewatch.instrument_redis(plain, CACHES, registry=cache_table)
            client.set("embedding:k", "v")
            with cachewatch.trace_cache_operation(
                "get", "embedding_cache", registry=cache_table
            ) as op:
                op.result(client.get("embedding:k"))
            with client.pipeline() as pipe:
                pipe.get("search:a").get("search:b")
                pipe.execute()
            with pytest.raises(redispy.ResponseError):
                client.lpush("embedding:k", "x")  # WRONGTYPE, an uncounted command
            spans = receiver.wait_for_names(
                "GET embedding_cache", "SET embedding_cache", "PIPELINE search_cache", "LPUSH"
            )
        finally:
            tracing_state.shutdown_tracing()
            plain.close()
    get = next(s for s in spans if s.name == "GET embedding_cache")
    assert get.attributes["db.system.name"] == "redis"
    assert get.attributes["db.operation.name"] == "GET"
    assert get.attributes["db.namespace"] == "3"
    assert get.attributes["server.address"] == "127.0.0.1"
    assert get.attributes["server.port"] == server.port
    assert get.attributes["cachewatch.cache.name"] == "embedding_cache"
    assert get.attributes["cachewatch.cache.hit"] is True
    assert get.attributes["cachewatch.cache.key.hash"] == tracing_state.key_hash("embedding:k")
    assert get.kind == 3  # SPAN_KIND_CLIENT
    parent = next(s for s in spans if s.name == "get embedding_cache")
    assert get.parent_span_id == parent.span_id and get.trace_id == parent.trace_id
    pipeline = next(s for s in spans if s.name == "PIPELINE search_cache")
    assert pipeline.attributes["db.operation.batch.size"] == 2
    failed = next(s for s in spans if s.name == "LPUSH")
    assert failed.status_code == 2 and failed.attributes["error.type"] == "ResponseError"
    dumped = json.dumps([(s.attributes, s.resource) for s in spans])
    assert "s3cret" not in dumped and "embedding:k" not in dumped
