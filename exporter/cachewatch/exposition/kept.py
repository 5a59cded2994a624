"""prometheus_client's own collectors, with their families kept frozen while what they show
stands: the garbage collector's counters move a few times a minute and the platform never,
but both were built and encoded on every scrape (~25 us of one)."""

from __future__ import annotations

import gc
from collections.abc import Callable, Hashable, Iterator

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from ..snapshot import FamilyCache


class KeptCollector(Collector):
    """``collector``'s families, made again only when ``key()`` changes; ``key`` must say
    everything they show."""

    def __init__(self, collector: Collector, key: Callable[[], Hashable]) -> None:
        self.collector = collector
        self.key = key
        self._families = FamilyCache()

    def collect(self) -> Iterator[Metric]:
        return iter(self._families.get(self.key(), self.collector.collect))


def gc_state() -> Hashable:
    """What ``GCCollector`` shows: each generation's collections, collected, uncollectable."""
    return tuple(
        (stat["collections"], stat["collected"], stat["uncollectable"]) for stat in gc.get_stats()
    )


def never_changes() -> Hashable:
    """The key of a collector whose families never change (``PlatformCollector``)."""
    return ()
