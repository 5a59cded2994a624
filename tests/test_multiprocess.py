"""The reading side of multi-process mode: the aggregate of the processes' files, which
processes count as live, archiving the dead, and the faults: damaged files, a missing
directory, a previous run's files, and writers racing the reader."""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import struct
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.values import MultiProcessValue

from cachewatch.config import MultiprocessSettings
from cachewatch.instrument import procfile
from cachewatch.instrument.flusher import pid_namespace
from cachewatch.instrument.procfile import ProcessMeta
from cachewatch.snapshot import CacheSnapshot, SourceSnapshot
from cachewatch.sources.multiprocess import MultiprocessSource

from .test_procfile import sample_cache


def write_process(
    directory: Path, pid: int, hits: int, *, exited: bool = False, namespace: str = "",
    token: str | None = None, name: str = "embeddings",
) -> str:  # fmt: skip
    token = token or f"{pid:08x}"[-8:]
    meta = ProcessMeta(pid=pid, token=token, started=10.0, pid_namespace=namespace,
                       flush_interval=1.0, exited=exited)  # fmt: skip
    file_name = procfile.process_file_name(pid, token)
    data = procfile.encode(meta, [(sample_cache(name, hits), 5.0)])
    procfile.write_atomically(str(directory), file_name, data)
    return file_name


def source(directory: Path, **kwargs: object) -> MultiprocessSource:
    return MultiprocessSource(MultiprocessSettings(str(directory), 1.0, 200), **kwargs)  # type: ignore[arg-type]


def caches(snapshot: SourceSnapshot) -> dict[str, CacheSnapshot]:
    assert snapshot.up, snapshot.error
    return {cache.name: cache for cache in snapshot.caches}


def family(snapshot: SourceSnapshot, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = [f for f in snapshot.extra_families if f.name == name]
    assert found, name
    return {tuple(sorted(s.labels.items())): s.value for s in found[0].samples}


def test_dead_processes_are_archived_and_the_totals_never_move(tmp_path: Path) -> None:
    alive = {101, 102}
    reader = source(tmp_path, is_alive=lambda pid, _started: pid in alive)
    ns = pid_namespace()
    for pid in (101, 102, 103):
        write_process(tmp_path, pid, hits=pid, namespace=ns)
    write_process(tmp_path, 104, hits=104, exited=True, namespace=ns)
    first = reader.poll()
    assert caches(first)["embeddings"].hits == 101 + 102 + 103 + 104
    assert caches(first)["embeddings"].size == 20  # the two live processes' copies
    assert family(first, "cachewatch_multiprocess_processes") == {
        (("state", "live"),): 2, (("state", "dead"),): 2
    }  # fmt: skip
    names = sorted(os.listdir(tmp_path))
    assert procfile.ARCHIVE_NAME in names and len([n for n in names if n.endswith(".proc")]) == 3
    alive.discard(102)
    second = reader.poll()
    third = source(tmp_path, is_alive=lambda pid, _s: pid in alive).poll()  # another server
    for snapshot in (second, third):
        assert caches(snapshot)["embeddings"].hits == 410
        assert caches(snapshot)["embeddings"].size == 10
    assert family(second, "cachewatch_multiprocess_archived_processes") == {(): 3}


def test_a_marked_process_leaves_the_live_sums_at_once(tmp_path: Path) -> None:
    write_process(tmp_path, 201, hits=5, namespace="pid:[elsewhere]")
    write_process(tmp_path, 202, hits=6, namespace="pid:[elsewhere]")
    reader = source(tmp_path)
    assert caches(reader.poll())["embeddings"].size == 20  # another namespace: fresh is live
    procfile.mark_dead(str(tmp_path), 202)
    found = caches(reader.poll())["embeddings"]
    assert found.size == 10 and found.hits == 11


def test_a_stale_file_from_another_pid_namespace_is_a_dead_process(tmp_path: Path) -> None:
    name = write_process(tmp_path, 301, hits=5, namespace="pid:[elsewhere]")
    old = time.time() - 60
    os.utime(tmp_path / name, (old, old))
    found = caches(source(tmp_path).poll())["embeddings"]
    assert found.hits == 5 and found.size is None


def test_a_previous_runs_files_keep_their_counts_and_are_archived(tmp_path: Path) -> None:
    """The rule for files left by a previous run: their processes are dead (their pids are
    gone, or now belong to processes that started later), so their counters stay in the
    totals and their entries and memory do not count."""
    ns = pid_namespace()
    write_process(tmp_path, os.getpid(), hits=7, namespace=ns)  # our pid, an older start time
    write_process(tmp_path, 2**22 + 17, hits=8, namespace=ns)  # a pid no process has
    found = caches(source(tmp_path).poll())["embeddings"]
    assert found.hits == 15 and found.size is None
    assert [n for n in os.listdir(tmp_path) if n.endswith(".proc")] == [procfile.ARCHIVE_NAME]


def test_a_damaged_file_is_skipped_counted_and_its_last_reading_stands_in(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = write_process(tmp_path, 401, hits=40, namespace="pid:[elsewhere]")
    write_process(tmp_path, 402, hits=2, namespace="pid:[elsewhere]")
    reader = source(tmp_path)
    assert caches(reader.poll())["embeddings"].hits == 42
    data = (tmp_path / good).read_bytes()
    with caplog.at_level(logging.WARNING, logger="cachewatch"):
        (tmp_path / good).write_bytes(data[: len(data) // 2])  # truncated
        for _ in range(3):
            assert caches(reader.poll())["embeddings"].hits == 42  # never goes backwards
        damaged = bytearray(data)
        damaged[-5] ^= 0xFF
        (tmp_path / good).write_bytes(bytes(damaged))
        snapshot = reader.poll()
    assert caches(snapshot)["embeddings"].hits == 42
    assert family(snapshot, "cachewatch_multiprocess_file_errors") == {
        (("reason", "truncated"),): 1, (("reason", "corrupt"),): 1
    }  # fmt: skip
    assert len([r for r in caplog.records if "skipping" in r.getMessage()]) == 2
    # A server that never read the good version skips it and still answers.
    fresh = source(tmp_path).poll()
    assert caches(fresh)["embeddings"].hits == 2
    garbage = tmp_path / "cachewatch-403-0000abcd.proc"
    garbage.write_bytes(b"\x00" * 100)
    assert caches(source(tmp_path).poll())["embeddings"].hits == 2


def test_a_missing_directory_is_a_source_down_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reader = source(tmp_path / "missing")
    with caplog.at_level(logging.WARNING, logger="cachewatch"):
        results = [reader.poll() for _ in range(3)]
    assert all(not r.up and r.error and "missing" in r.error for r in results)
    assert len([r for r in caplog.records if "cannot read" in r.getMessage()]) == 1
    (tmp_path / "missing").mkdir()
    assert reader.poll().up


def test_the_cap_applies_to_the_aggregate(tmp_path: Path) -> None:
    for pid in range(501, 506):
        write_process(tmp_path, pid, hits=1, name=f"tenant-{pid}", namespace="pid:[x]")
    snapshot = MultiprocessSource(MultiprocessSettings(str(tmp_path), 1.0, 3)).poll()
    found = caches(snapshot)
    assert len(found) == 4 and found["other"].hits == 2
    assert family(snapshot, "cachewatch_cache_names_dropped") == {(): 2}


def _write_counter(directory: str) -> None:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    import prometheus_client.values as values

    values.ValueClass = MultiProcessValue()
    registry = CollectorRegistry()
    Counter("app_requests", "Requests served.", registry=registry).inc(3)
    Histogram("app_latency_seconds", "Latency.", registry=registry).observe(0.2)
    # A name cachewatch publishes itself: left out, not published twice.
    Counter("cache_gets", "Somebody else's lookups.", registry=registry).inc()


def test_prometheus_clients_files_in_the_same_directory_are_published_once(
    tmp_path: Path,
) -> None:
    write_process(tmp_path, 601, hits=9, namespace="pid:[x]")
    context = multiprocessing.get_context("spawn")
    process = context.Process(target=_write_counter, args=(str(tmp_path),))
    process.start()
    process.join(60)
    assert process.exitcode == 0
    # A damaged one of theirs: an entry that claims to run past the end of the data.
    damaged = struct.pack("<ii", 100, 0) + struct.pack("<i", 1000) + b"x" * 88
    (tmp_path / "counter_99999.db").write_bytes(damaged)
    snapshot = source(tmp_path).poll()
    names = [f.name for f in snapshot.extra_families]
    assert "app_requests" in names and "app_latency_seconds" in names
    assert "cache_gets" not in names
    requests = family(snapshot, "app_requests")
    assert list(requests.values()) == [3.0]
    assert family(snapshot, "cachewatch_multiprocess_file_errors") == {
        (("reason", "prometheus_client"),): 1
    }  # fmt: skip
    assert caches(snapshot)["embeddings"].hits == 9


def _hammer(directory: str, pid: int, rounds: int) -> None:
    """Rewrite one process file as fast as possible: hits and misses always equal."""
    for n in range(1, rounds + 1):
        cache = dataclasses.replace(sample_cache(hits=n), misses=n)
        meta = ProcessMeta(pid=pid, token=f"{pid:08x}", started=1.0, pid_namespace="pid:[x]",
                           flush_interval=1.0)  # fmt: skip
        procfile.write_atomically(
            directory,
            procfile.process_file_name(pid, meta.token),
            procfile.encode(meta, [(cache, 1.0)]),
        )


def test_many_writers_and_one_reader_never_see_a_torn_value(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    writers = [
        context.Process(target=_hammer, args=(str(tmp_path), 700 + i, 400)) for i in range(4)
    ]
    for writer in writers:
        writer.start()
    reader = source(tmp_path)
    previous = 0
    polls = 0
    try:
        while any(w.is_alive() for w in writers) and polls < 2000:
            snapshot = reader.poll()
            polls += 1
            found = caches(snapshot).get("embeddings")
            if found is None:
                continue
            assert found.hits == found.misses  # each file is seen whole, never half-written
            assert found.hits >= previous  # and never going backwards
            previous = found.hits
    finally:
        for writer in writers:
            writer.join(60)
    assert polls > 5
    final = caches(reader.poll())["embeddings"]
    assert final.hits == final.misses == 4 * 400
    assert not any(
        v for k, v in family(reader.poll(), "cachewatch_multiprocess_file_errors").items()
    )
