"""prometheus_client's collectors behind KeptCollector: the same families, kept while the
garbage collector and the platform stand still, made again when they move."""

from __future__ import annotations

import gc

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector

from cachewatch.exposition.encoders import render_text
from cachewatch.exposition.kept import KeptCollector, gc_state, never_changes


def _fresh() -> bytes:
    return render_text(list(GCCollector(registry=CollectorRegistry()).collect()))


def test_the_gc_counters_are_kept_until_a_collection_moves_them() -> None:
    gc.disable()  # no collection of its own between the two reads
    try:
        kept = KeptCollector(GCCollector(registry=CollectorRegistry()), gc_state)
        first, again = list(kept.collect()), list(kept.collect())
        assert all(a is b for a, b in zip(first, again, strict=True))
        assert render_text(first) == _fresh()
        gc.collect()
        moved = list(kept.collect())
        assert moved[0] is not first[0]
        assert render_text(moved) == _fresh()
    finally:
        gc.enable()


def test_the_platform_is_made_once() -> None:
    kept = KeptCollector(PlatformCollector(registry=None), never_changes)
    first = list(kept.collect())
    assert first[0].name == "python_info" and next(iter(kept.collect())) is first[0]
