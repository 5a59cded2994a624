"""The multi-process files: what is written is read back exactly, and a file that was cut
short, damaged or written by something else is recognised as such, never misread."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from cachewatch.instrument import procfile
from cachewatch.instrument.procfile import FileFormatError, ProcessMeta
from cachewatch.snapshot import CacheSnapshot, Exemplar, HistogramSnapshot
from cachewatch.sources.aggregate import aggregate

META = ProcessMeta(pid=41, token="0a1b2c3d", started=100.0, pid_namespace="pid:[1]",
                   flush_interval=1.0, dropped=2)  # fmt: skip


def _histogram(bounds: tuple[float, ...], counts: list[int], total: float) -> HistogramSnapshot:
    return HistogramSnapshot(tuple(zip(bounds, counts, strict=True)), total, counts[-1])


def sample_cache(name: str = "embeddings", hits: int = 7) -> CacheSnapshot:
    latency_counts = [0] * 5 + [3] * 4 + [5] * (len(procfile.LATENCY_BOUNDS) - 9)
    cleanup_counts = [1] * len(procfile.CLEANUP_BOUNDS)
    get = _histogram(procfile.LATENCY_BOUNDS, latency_counts, 0.0125)
    bound = procfile.LATENCY_BOUNDS[6]
    get = HistogramSnapshot(
        get.buckets, get.sum, get.count, {bound: Exemplar("ab" * 16, 9e-5, 5.0)}
    )
    return CacheSnapshot(
        name=name, source="local", hits=hits, misses=3, puts=4, removals=1, evictions=2,
        expirations=5, size=10, memory_bytes=2048.0, memory_limit_bytes=None, max_entries=100,
        errors={("get", "TimeoutError"): 2}, cleanups={"scheduled": 1}, cleanup_removed=9,
        cleanup_duration=_histogram(procfile.CLEANUP_BOUNDS, cleanup_counts, 0.002),
        last_cleanup_timestamp=123.5, latency={"get": get},
    )  # fmt: skip


def test_a_file_reads_back_exactly_what_was_written() -> None:
    data = procfile.encode(META, [(sample_cache(), 50.0), (sample_cache("search", 1), 60.0)])
    file = procfile.decode(data)
    assert file.meta.pid == 41 and file.meta.token == "0a1b2c3d" and file.meta.dropped == 2
    assert [c.name for c in file.layout.caches] == ["embeddings", "search"]
    assert file.layout.caches[0].first_seen == 50.0
    result = aggregate([(file, True)], max_caches=10, source="local")
    back = {cache.name: cache for cache in result.caches}
    assert back["embeddings"] == sample_cache()
    assert back["search"].hits == 1
    assert math.isnan(file.gauges[2])  # an unknown memory limit stays unknown


def test_a_truncated_file_is_recognised_at_any_length() -> None:
    data = procfile.encode(META, [(sample_cache(), 50.0)])
    for length in (0, 5, 30, len(data) // 2, len(data) - 1):
        with pytest.raises(FileFormatError) as caught:
            procfile.decode(data[:length])
        assert caught.value.reason == "truncated", length


def test_a_damaged_file_is_recognised() -> None:
    data = bytearray(procfile.encode(META, [(sample_cache(), 50.0)]))
    for position in range(data.index(b"\n") + 1, len(data), 97):
        damaged = bytearray(data)
        damaged[position] ^= 0x40
        with pytest.raises(FileFormatError) as caught:
            procfile.decode(bytes(damaged))
        assert caught.value.reason == "corrupt"
    with pytest.raises(FileFormatError) as caught:
        procfile.decode(bytes(data) + b"tail")
    assert caught.value.reason == "corrupt"


def test_files_of_another_kind_or_version_are_not_misread() -> None:
    data = procfile.encode(META, [(sample_cache(), 50.0)])
    for other in (b"\x00" * 400, b'{"json": true}\n', data.replace(b" 1 ", b" 2 ", 1)):
        with pytest.raises(FileFormatError) as caught:
            procfile.decode(other)
        assert caught.value.reason == "format"


def test_the_same_layout_is_decoded_once() -> None:
    layouts = procfile.LayoutCache()
    one = procfile.decode(procfile.encode(META, [(sample_cache(hits=1), 5.0)]), layouts)
    two = procfile.decode(procfile.encode(META, [(sample_cache(hits=2), 5.0)]), layouts)
    assert one.layout is two.layout and one.counters != two.counters


def test_marking_a_process_dead_marks_only_its_files(tmp_path: Path) -> None:
    for name in ("cachewatch-41-0a1b2c3d.proc", "cachewatch-410-00000000.proc", "other.db"):
        (tmp_path / name).write_bytes(b"")
    assert procfile.mark_dead(str(tmp_path), 41) == ["cachewatch-41-0a1b2c3d.dead"]
    assert (tmp_path / "cachewatch-41-0a1b2c3d.dead").exists()
    assert procfile.mark_dead(str(tmp_path), 7) == []


def test_the_exclusive_lock_is_refused_while_a_reader_holds_it(tmp_path: Path) -> None:
    directory = str(tmp_path)
    with procfile.locked(directory) as shared:
        assert shared
        with procfile.locked(directory, exclusive=True, wait=False) as exclusive:
            assert not exclusive
        with procfile.locked(directory) as second_reader:
            assert second_reader
    with procfile.locked(directory, exclusive=True, wait=False) as exclusive:
        assert exclusive


def test_no_lock_in_a_directory_that_does_not_exist(tmp_path: Path) -> None:
    with procfile.locked(str(tmp_path / "missing")) as held:
        assert not held


def test_a_file_is_replaced_whole(tmp_path: Path) -> None:
    procfile.write_atomically(str(tmp_path), "f.proc", b"one")
    procfile.write_atomically(str(tmp_path), "f.proc", b"two")
    assert (tmp_path / "f.proc").read_bytes() == b"two"
    assert os.listdir(tmp_path) == ["f.proc"]  # no temporary file left behind
