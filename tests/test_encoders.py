"""The fast /metrics renderers give exactly prometheus_client's bytes, in both formats."""

from __future__ import annotations

import gzip
from collections.abc import Iterable

import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.openmetrics.exposition import generate_latest as om_generate_latest
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar
from prometheus_client.utils import floatToGoString as prometheus_float

from cachewatch.exposition.encoders import floatToGoString as fast_float
from cachewatch.exposition.encoders import render_openmetrics, render_text
from cachewatch.snapshot import freeze, renderings

from .redisdata import fill, settings_for
from .servers import RedisServer
from .test_redis import served

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


class _Fixed(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def _families() -> list[Metric]:
    counter = CounterMetricFamily("jobs", "Jobs done.", labels=["queue"], created=1700000000.5)
    counter.add_metric(['a\\b\n"c"'], 3, created=1700000001.25)
    gauge = GaugeMetricFamily("temp_celsius", 'Temp\nwith \\ and "quotes".', unit="celsius")
    gauge.add_metric([], 21.5, timestamp=1700000002.125)
    gauge.add_metric([], float("inf"))
    histogram = HistogramMetricFamily("lat_seconds", "Latency.", labels=["op"], unit="seconds")
    histogram.add_metric(
        ["get"],
        [("0.005", 1, Exemplar({"trace_id": "abc"}, 0.004, 1700000003.0)), ("+Inf", 4)],
        0.5,
    )
    summary = SummaryMetricFamily("req", "Requests.", count_value=10, sum_value=2.5)
    info = InfoMetricFamily("build", "Build.", value={"version": "1.2"})
    return [counter, gauge, histogram, summary, info, GaugeMetricFamily("empty", "No samples.")]


def test_same_bytes_as_prometheus_client_for_every_kind_of_family() -> None:
    families = _families()
    assert render_text(families) == generate_latest(_Fixed(families))
    assert render_openmetrics(families) == om_generate_latest(_Fixed(families))


def test_same_bytes_again_from_the_caches() -> None:
    """The second scrape renders headers and sample prefixes from caches."""
    for _ in range(2):
        families = _families()
        assert render_openmetrics(families) == om_generate_latest(_Fixed(families))
        assert render_text(families) == generate_latest(_Fixed(families))


def test_frozen_families_are_encoded_once_and_the_same() -> None:
    """A frozen family keeps its text in each format, and later scrapes take it from there."""
    families = [freeze(family) for family in _families()]
    for _ in range(2):
        assert render_text(families) == generate_latest(_Fixed(families))
        assert render_openmetrics(families) == om_generate_latest(_Fixed(families))
    kept = renderings(families[1])
    assert kept is not None and set(kept) == {"text", "openmetrics"}
    kept["text"] = "# the kept text\n"
    assert b"# the kept text\n" in render_text(families)


def test_a_memo_of_real_info_gives_the_same_bytes(redis: RedisServer) -> None:
    """Poll after poll of a busy server, families from a memo encode as those made afresh."""
    from cachewatch.sources.infofields import FamilyMemo
    from cachewatch.sources.redis_info import info_families, parse_info

    from .redisdata import client

    conn = client(redis)
    conn.set_response_callback("INFO", lambda response, **_: response)
    memo = FamilyMemo()
    before: list[Metric] = []
    for round_ in range(4):
        fill(conn, f"k{round_}:", 50)
        info = parse_info(conn.execute_command("INFO", "ALL").decode())
        memoized, skipped = info_families(info, db_indices=range(16), memo=memo, now=1.0)
        fresh, fresh_skipped = info_families(info, db_indices=range(16), now=1.0)
        assert skipped == fresh_skipped
        assert render_text(memoized) == generate_latest(_Fixed(fresh))
        assert render_openmetrics(memoized) == om_generate_latest(_Fixed(fresh))
        kept = sum(any(family is old for old in before) for family in memoized)
        if before:  # most of INFO stays; what moved (commands, memory, keys) is made again
            assert len(memoized) // 2 < kept < len(memoized)
        before = memoized
    conn.close()


def test_same_bytes_on_a_real_scrape(redis: RedisServer) -> None:
    from cachewatch.sources.redis import RedisSource

    from .redisdata import client

    fill(client(redis), "user:", 100)
    source = RedisSource(settings_for(redis, {"users": "user:"}), start_census=False)
    source.census_step()
    with served(source) as port:
        url = f"http://127.0.0.1:{port}/metrics"
        for accept, render, reference in (
            ("", render_text, generate_latest),
            (PROMETHEUS_ACCEPT, render_openmetrics, om_generate_latest),
        ):
            response = requests.get(url, headers={"Accept": accept}, timeout=10)
            assert response.headers["Content-Encoding"] == "gzip"
            body = response.content
            assert body.startswith(b"# HELP")
            families = list(_parse_back(body, openmetrics=bool(accept)))
            assert render(families) == reference(_Fixed(families))
        raw = requests.get(url, headers={"Accept-Encoding": "gzip"}, stream=True, timeout=10)
        assert gzip.decompress(raw.raw.read()).startswith(b"# HELP")


def _parse_back(body: bytes, openmetrics: bool) -> Iterable[Metric]:
    if openmetrics:
        from prometheus_client.openmetrics.parser import text_string_to_metric_families

        return text_string_to_metric_families(body.decode())
    from prometheus_client.parser import text_string_to_metric_families as parse_text

    return parse_text(body.decode())


@settings(max_examples=2000, deadline=None)
@given(st.floats() | st.integers(min_value=-(10**30), max_value=10**30))
def test_values_are_spelt_as_prometheus_client_spells_them(value: float) -> None:
    assert fast_float(value) == prometheus_float(value)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.floats()
        | st.integers(min_value=-(10**30), max_value=10**30)
        | st.sampled_from([0, 0.0, -0.0, 1, 1.0, True, 2**53 + 1, float(2**53)]),
        min_size=1,
        max_size=12,
    )
)
def test_values_spelt_from_the_cache_are_spelt_as_prometheus_client_spells_them(
    values: list[float],
) -> None:
    """Equal values of other types or signs (1 and 1.0, 0.0 and -0.0) in one scrape and the
    next: each spelt as its own."""
    for order in (values, values[::-1]):
        family = GaugeMetricFamily("v", "Values.", labels=["i"])
        for i, value in enumerate(order):
            family.add_metric([str(i)], value)
        assert render_openmetrics([family]) == om_generate_latest(_Fixed([family]))
        assert render_text([family]) == generate_latest(_Fixed([family]))
