"""watch_lru: an lru_cache function's own statistics, read at collection time."""

from __future__ import annotations

import functools

import cachewatch
from cachewatch import CacheRegistry
from cachewatch.web.server import HttpServer

from .scrape import samples, value


def test_watch_lru_reads_cache_info(cache_table: CacheRegistry, http: HttpServer) -> None:
    calls = []

    @functools.lru_cache(maxsize=2)
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    cachewatch.watch_lru(square, "squares", registry=cache_table)
    for x in (1, 1, 2, 3, 1):
        square(x)
    found = samples(http.port)
    assert value(found, "cache_gets_total", cache="squares", result="hit") == 1
    assert value(found, "cache_gets_total", cache="squares", result="miss") == 4
    assert value(found, "cache_size", cache="squares") == 2
    assert value(found, "cachewatch_cache_max_entries", cache="squares") == 2
    assert value(found, "cache_evictions_total", cache="squares") == 2
    assert value(found, "cache_puts_total", cache="squares") == 4
    assert len(calls) == 4
