"""Frozen families and the cache of them that collectors keep between scrapes."""

from __future__ import annotations

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from cachewatch.snapshot import FamilyCache, freeze, renderings


def _gauge(value: float) -> list[Metric]:
    family = GaugeMetricFamily("g", "A gauge.")
    family.add_metric([], value)
    return [family]


def test_families_are_made_again_only_when_the_key_changes() -> None:
    cache = FamilyCache()
    made: list[float] = []

    def make(value: float) -> list[Metric]:
        made.append(value)
        return _gauge(value)

    first = cache.get(("1.0",), lambda: make(1.0))
    again = cache.get(("1.0",), lambda: make(99.0))
    moved = cache.get(("2.0",), lambda: make(2.0))
    assert made == [1.0, 2.0]
    assert again[0] is first[0] and renderings(first[0]) is not None
    assert moved[0] is not first[0] and moved[0].samples[0].value == 2.0


def test_freezing_keeps_an_empty_place_for_the_encoded_text() -> None:
    family = _gauge(1.0)[0]
    assert renderings(family) is None
    assert freeze(family) is family and renderings(family) == {}
