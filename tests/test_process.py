"""The process families through kept descriptors are prometheus_client's own."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, ProcessCollector

from cachewatch.exposition.process import KeptProcessCollector


def _families(collector: ProcessCollector) -> list[tuple[str, str, str, str, float]]:
    return [
        (f.name, f.type, f.documentation, s.name, s.value)
        for f in collector.collect()
        for s in f.samples
    ]


def test_the_same_families_as_prometheus_client_s_collector() -> None:
    ours = _families(KeptProcessCollector(registry=CollectorRegistry()))
    theirs = _families(ProcessCollector(registry=CollectorRegistry()))
    assert [row[:4] for row in ours] == [row[:4] for row in theirs]
    assert len(ours) == 6
    values = {
        row[3]: (mine, row[4]) for row, mine in zip(theirs, (r[4] for r in ours), strict=True)
    }
    for name in ("process_start_time_seconds", "process_max_fds"):
        assert values[name][0] == values[name][1], name
    rss, reference = values["process_resident_memory_bytes"]
    assert abs(rss - reference) < 8 * 2**20  # the process moves between the two reads
    assert values["process_cpu_seconds_total"][0] >= 0


def _shape(collector: ProcessCollector) -> list[tuple[object, ...]]:
    """Everything of the families but the values."""
    return [
        (type(f), f.name, f.type, f.unit, f.documentation, s.name, s.labels, s.timestamp,
         s.exemplar, s.native_histogram)
        for f in collector.collect()
        for s in f.samples
    ]  # fmt: skip


def test_every_scrape_s_families_are_shaped_as_prometheus_client_s() -> None:
    ours = KeptProcessCollector(registry=CollectorRegistry())
    theirs = _shape(ProcessCollector(registry=CollectorRegistry()))
    first, second = _shape(ours), _shape(ours)
    assert first == theirs and second == theirs


def test_an_opened_file_is_counted_on_the_next_scrape() -> None:
    collector = KeptProcessCollector(registry=CollectorRegistry())

    def open_fds() -> float:
        return next(s.value for f in collector.collect() for s in f.samples
                    if s.name == "process_open_fds")  # fmt: skip

    before = open_fds()
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        assert open_fds() == before + 1
    finally:
        os.close(fd)
    assert open_fds() == before
