"""The cardinality guard: however many cache names an application invents, the number of
series on /metrics stays bounded, and what was folded away is counted."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import cachewatch
from cachewatch import CacheRegistry, Exporter
from cachewatch.config import Config
from cachewatch.sources.local import LocalSource
from cachewatch.web.routes import make_wsgi_app
from cachewatch.web.server import HttpServer, serve

from .scrape import samples, value

DEFAULT_MAX_CACHES = Config().max_caches


def _series_after(names: int, max_caches: int) -> tuple[int, set[str], float | None, float | None]:
    """(series count, distinct cache labels, dropped counter, hits of cache="other")."""
    registry = CacheRegistry(max_caches=max_caches)
    exporter = Exporter([LocalSource(registry)], caches=registry, process_metrics=False)
    server = serve(make_wsgi_app(exporter), "127.0.0.1", 0)
    try:
        for i in range(names):
            cache = cachewatch.instrument({}, f"tenant-{i}", registry=registry)
            cache["k"] = i
            assert cache.get("k") == i  # one hit per cache, wherever it is counted
        found = samples(server.port)
    finally:
        server.shutdown()
        exporter.close()
    labels = {dict(key[1])["cache"] for key in found if "cache" in dict(key[1])}
    dropped = value(found, "cachewatch_cache_names_dropped_total")
    other_hits = value(found, "cache_gets_total", cache="other", result="hit")
    return len(found), labels, dropped, other_hits


def test_ten_thousand_cache_names_keep_the_series_bounded() -> None:
    small_count, small_labels, small_dropped, _ = _series_after(300, DEFAULT_MAX_CACHES)
    count, labels, dropped, other_hits = _series_after(10_000, DEFAULT_MAX_CACHES)
    assert len(labels) == DEFAULT_MAX_CACHES + 1  # the first 200 names and "other"
    assert "other" in labels and "tenant-0" in labels and "tenant-9999" not in labels
    assert count == small_count  # 300 names or 10,000: the same series
    assert dropped == 10_000 - DEFAULT_MAX_CACHES
    assert small_dropped == 300 - DEFAULT_MAX_CACHES
    assert other_hits == 10_000 - DEFAULT_MAX_CACHES  # nothing is lost, only folded
    assert len(small_labels) == len(labels)


def test_a_smaller_cap_is_honoured() -> None:
    count, labels, dropped, _ = _series_after(1_000, 10)
    few_count, _, _, _ = _series_after(11, 10)
    assert len(labels) == 11
    assert dropped == 990
    assert count == few_count


def test_embedded_mode_honours_the_environment_variable() -> None:
    script = textwrap.dedent(
        """
        import json, requests, cachewatch
        caches = [cachewatch.instrument({}, f"c{i}") for i in range(40)]
        server = cachewatch.start_http_server(0)
        text = requests.get(f"http://127.0.0.1:{server.port}/metrics", timeout=10).text
        names = {line.split('cache="')[1].split('"')[0]
                 for line in text.splitlines() if line.startswith("cache_puts_total{")}
        dropped = [line for line in text.splitlines()
                   if line.startswith("cachewatch_cache_names_dropped_total ")]
        print(json.dumps({"names": sorted(names), "dropped": dropped}))
        server.shutdown()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={"CACHEWATCH_CACHE_MAX_NAMES": "5", "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["names"] == ["c0", "c1", "c2", "c3", "c4", "other"]
    assert found["dropped"] == ["cachewatch_cache_names_dropped_total 35.0"]


def test_cache_names_beyond_the_cap_fold_into_other(http: HttpServer) -> None:
    small = CacheRegistry(max_caches=3)
    for i in range(10):
        cachewatch.cache_metrics(f"c{i}", registry=small).hit()
    names = {r.name for r in small.recorders()}
    assert names == {"c0", "c1", "c2", "other"}
    assert small.recorder("other").snapshot().hits == 7
    assert small.dropped.value == 7
