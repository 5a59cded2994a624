"""In-process instrumentation of mappings: exact counts, read back through the HTTP endpoint."""

from __future__ import annotations

import threading

import cachetools
import pytest

import cachewatch
from cachewatch import CacheRegistry
from cachewatch.web.server import HttpServer

from .scrape import samples, value


def test_dict_counts_hits_misses_puts_and_removals(
    cache_table: CacheRegistry, http: HttpServer
) -> None:
    cache = cachewatch.instrument({}, "plain", registry=cache_table)
    cache["none"] = None
    cache["zero"] = 0
    cache["empty"] = ""
    cache["x"] = "value"
    assert cache.get("none", "default") is None  # a stored None is a hit
    assert cache["zero"] == 0
    assert cache.get("empty") == ""
    assert cache.get("absent") is None
    with pytest.raises(KeyError):
        cache["absent"]
    del cache["x"]
    assert cache.pop("zero") == 0
    assert cache.pop("absent", "fallback") == "fallback"

    found = samples(http.port)
    assert value(found, "cache_gets_total", cache="plain", result="hit") == 3
    assert value(found, "cache_gets_total", cache="plain", result="miss") == 2
    assert value(found, "cache_puts_total", cache="plain") == 4
    assert value(found, "cache_removals_total", cache="plain") == 2
    assert value(found, "cache_evictions_total", cache="plain") == 0
    assert value(found, "cache_size", cache="plain") == 2


def test_wrapper_behaves_like_the_wrapped_mapping(cache_table: CacheRegistry) -> None:
    original = {"a": 1}
    cache = cachewatch.instrument(original, "same", registry=cache_table)
    cache.update({"b": 2}, c=3)
    assert cache == {"a": 1, "b": 2, "c": 3}
    assert original is cache.wrapped and original == cache
    assert "a" in cache and "z" not in cache
    assert sorted(cache) == ["a", "b", "c"] and len(cache) == 3
    assert sorted(cache.items()) == [("a", 1), ("b", 2), ("c", 3)]
    assert cache.setdefault("a", 9) == 1 and cache.setdefault("d", 4) == 4
    assert repr(cache) == repr(original)
    snapshot = cache_table.recorder("same").snapshot()
    # update: 2 puts, setdefault: one hit, one miss + put; "in" and iteration are not lookups
    assert (snapshot.hits, snapshot.misses, snapshot.puts) == (1, 1, 3)
    cache.clear()
    assert len(original) == 0
    assert cache_table.recorder("same").snapshot().removals == 4


def test_cachetools_evictions_are_not_removals(
    cache_table: CacheRegistry, http: HttpServer
) -> None:
    lru = cachewatch.instrument(cachetools.LRUCache(maxsize=3), "lru", registry=cache_table)
    lfu = cachewatch.instrument(cachetools.LFUCache(maxsize=2), "lfu", registry=cache_table)
    for i in range(10):
        lru[i] = i
        lfu[i] = i
    del lru[9]
    assert lru.maxsize == 3  # attributes of the wrapped cache pass through
    found = samples(http.port)
    assert value(found, "cache_evictions_total", cache="lru") == 7
    assert value(found, "cache_removals_total", cache="lru") == 1
    assert value(found, "cache_evictions_total", cache="lfu") == 8
    assert value(found, "cache_removals_total", cache="lfu") == 0
    assert value(found, "cachewatch_cache_max_entries", cache="lru") == 3
    assert value(found, "cache_size", cache="lru") == 2


def test_ttl_expirations_are_counted_as_expirations(
    cache_table: CacheRegistry, http: HttpServer
) -> None:
    now = [1000.0]
    ttl = cachetools.TTLCache(maxsize=100, ttl=10, timer=lambda: now[0])
    cache = cachewatch.instrument(ttl, "ttl", registry=cache_table)
    for i in range(5):
        cache[i] = i
    now[0] += 11
    assert cache.get(0) is None  # expired: a miss
    cache["fresh"] = 1  # a write makes the TTL cache drop what expired
    found = samples(http.port)
    assert value(found, "cachewatch_cache_expirations_total", cache="ttl") == 5
    assert value(found, "cache_evictions_total", cache="ttl") == 0
    assert value(found, "cache_gets_total", cache="ttl", result="miss") == 1
    assert value(found, "cache_size", cache="ttl") == 1


def test_no_increment_is_lost_under_eight_threads(cache_table: CacheRegistry) -> None:
    cache = cachewatch.instrument(
        {f"k{i}": i for i in range(100)}, "hammered", registry=cache_table
    )
    per_thread = 50_000
    start = threading.Barrier(8)

    def hammer(worker: int) -> None:
        start.wait()
        for i in range(per_thread):
            if cache.get(f"k{i % 200}") is None:  # half of the keys miss
                cache[f"w{worker}"] = i

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snap = cache_table.recorder("hammered").snapshot()
    assert snap.hits == 8 * per_thread // 2
    assert snap.misses == 8 * per_thread // 2
    assert snap.puts == 8 * per_thread // 2


def test_memory_estimate_is_sampled_and_close(cache_table: CacheRegistry) -> None:
    class CountingDict(dict[str, bytes]):
        reads = 0

        def __getitem__(self, key: str) -> bytes:
            CountingDict.reads += 1
            return super().__getitem__(key)

    backing = CountingDict({f"key-{i:06d}": bytes(1000) for i in range(50_000)})
    cache = cachewatch.instrument(backing, "big", registry=cache_table)
    true_size = sum(len(k) + 49 + 1033 for k in backing)  # str and bytes object overheads
    estimate = cache_table.recorder("big").snapshot().memory_bytes
    assert estimate is not None
    assert abs(estimate - true_size) / true_size < 0.05
    assert CountingDict.reads <= 64  # a sample, not a walk over 50,000 entries
    for i in range(1000):
        cache[f"new-{i}"] = bytes(2000)  # larger values shift the sampled mean up
    assert (cache_table.recorder("big").snapshot().memory_bytes or 0) > estimate


def test_instrument_rejects_what_is_not_a_mapping(cache_table: CacheRegistry) -> None:
    with pytest.raises(TypeError, match="MutableMapping"):
        cachewatch.instrument([1, 2], "bad", registry=cache_table)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="lru_cache"):
        cachewatch.watch_lru(len, "bad", registry=cache_table)
    with pytest.raises(ValueError, match="non-empty"):
        cachewatch.cache_metrics("  ", registry=cache_table)


def test_lookups_are_counted_not_timed_unless_asked_for(cache_table: CacheRegistry) -> None:
    counted = cachewatch.instrument({"k": 1}, "counted", registry=cache_table)
    timed = cachewatch.instrument({"k": 1}, "timed", latency_sample_every=4, registry=cache_table)
    for _ in range(40):
        assert counted.get("k") == 1 and timed["k"] == 1
        assert counted.get("absent") is None and timed.get("absent") is None
    assert counted.recorder.latency("get").snapshot().count == 0
    assert timed.recorder.latency("get").snapshot().count == 80 // 4  # one in four lookups
    assert timed.recorder.hits.value == 40 and timed.recorder.misses.value == 40
    with pytest.raises(ValueError, match="at least 1"):
        cachewatch.instrument({}, "bad", latency_sample_every=0, registry=cache_table)


def test_attributes_of_the_wrapped_cache_read_through(cache_table: CacheRegistry) -> None:
    class Tagged(dict[str, int]):
        kind = "class attribute"

        def __init__(self) -> None:
            super().__init__()
            self.owner = "instance attribute"

    wrapped = cachewatch.instrument(Tagged(), "tagged", registry=cache_table)
    assert wrapped.kind == "class attribute" and wrapped.owner == "instance attribute"
    assert wrapped.copy() == {}  # dict's own methods the wrapper does not define
    assert isinstance(wrapped, cachewatch.InstrumentedMapping)
    with pytest.raises(AttributeError):
        wrapped.no_such_attribute  # noqa: B018
