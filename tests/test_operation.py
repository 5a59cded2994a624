"""trace_cache_operation: one timed operation with its outcome and errors."""

from __future__ import annotations

import pytest

import cachewatch
from cachewatch import CacheRegistry
from cachewatch.web.server import HttpServer

from .scrape import samples, value


def test_trace_cache_operation_records_outcomes(
    cache_table: CacheRegistry, http: HttpServer
) -> None:
    with cachewatch.trace_cache_operation("get", "remote", "k", registry=cache_table) as op:
        op.result("value")
    with cachewatch.trace_cache_operation("get", "remote", "k", registry=cache_table) as op:
        op.result(None)
    with cachewatch.trace_cache_operation("set", "remote", "k", registry=cache_table):
        pass
    with (
        pytest.raises(ConnectionError),
        cachewatch.trace_cache_operation("get", "remote", "k", registry=cache_table),
    ):
        raise ConnectionError("down")
    found = samples(http.port)
    assert value(found, "cache_gets_total", cache="remote", result="hit") == 1
    assert value(found, "cache_gets_total", cache="remote", result="miss") == 1
    assert value(found, "cache_puts_total", cache="remote") == 1
    assert (
        value(found, "cachewatch_cache_errors_total", cache="remote", operation="get",
              error="ConnectionError") == 1
    )  # fmt: skip
    assert (
        value(found, "cachewatch_cache_operation_duration_seconds_count", cache="remote",
              operation="get") == 3
    )  # fmt: skip
