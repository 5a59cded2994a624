"""The writing side of multi-process mode: what a process counted reaches its file, a
forked child counts only what it did itself, the last flush at exit, and a directory that
is missing or not writable never troubles the application."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cachewatch
from cachewatch import CacheRegistry
from cachewatch.config import MultiprocessSettings
from cachewatch.instrument import procfile
from cachewatch.instrument.flusher import ProcessFlusher
from cachewatch.snapshot import CacheSnapshot
from cachewatch.sources.multiprocess import MultiprocessSource


def aggregate_of(directory: Path) -> dict[str, CacheSnapshot]:
    snapshot = MultiprocessSource(MultiprocessSettings(str(directory), 1.0, 200)).poll()
    assert snapshot.up, snapshot.error
    return {cache.name: cache for cache in snapshot.caches}


def writable(directory: Path, yes: bool) -> None:
    """Make ``directory`` (un)writable for this user; root ignores permission bits, so for
    root the directory is made immutable (ext4's ``chattr +i``), which root cannot write."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i" if yes else "+i", str(directory)], check=True, timeout=10)
    else:
        directory.chmod(0o755 if yes else 0o555)


def run_python(code: str, directory: Path, **env: str) -> str:
    """Run ``code`` in a fresh interpreter in multi-process mode; returns its stderr."""
    environ = {**os.environ, "CACHEWATCH_MULTIPROCESS_DIR": str(directory),
               "CACHEWATCH_MULTIPROCESS_FLUSH_INTERVAL": "0.1", **env}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=environ, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


def test_a_flush_publishes_what_the_process_counted(tmp_path: Path) -> None:
    table = CacheRegistry()
    cache = cachewatch.instrument({"k": 1}, "sessions", registry=table)
    for _ in range(5):
        cache.get("k")
    cache.get("absent")
    flusher = ProcessFlusher(table, MultiprocessSettings(str(tmp_path), 1.0))
    assert flusher.flush()
    found = aggregate_of(tmp_path)["sessions"]
    assert (found.hits, found.misses, found.size) == (5, 1, 1)
    cache.get("k")
    assert flusher.flush()
    assert aggregate_of(tmp_path)["sessions"].hits == 6
    assert flusher.flush(exiting=True)
    assert not flusher.flush()  # nothing is written after the last flush
    file = procfile.decode((tmp_path / flusher.file_name).read_bytes())
    assert file.meta.exited and file.meta.pid == os.getpid()
    assert aggregate_of(tmp_path)["sessions"].size is None  # an ended process holds nothing


def test_an_unchanged_process_only_touches_its_file(tmp_path: Path) -> None:
    table = CacheRegistry()
    cachewatch.cache_metrics("idle", registry=table).hit()
    flusher = ProcessFlusher(table, MultiprocessSettings(str(tmp_path), 1.0))
    flusher.flush()
    path = tmp_path / flusher.file_name
    os.utime(path, (1.0, 1.0))
    inode = path.stat().st_ino
    flusher.flush()
    assert path.stat().st_ino == inode and path.stat().st_mtime > 1.0


def test_a_process_whose_file_was_archived_continues_without_counting_twice(
    tmp_path: Path,
) -> None:
    table = CacheRegistry()
    recorder = cachewatch.cache_metrics("jobs", registry=table)
    flusher = ProcessFlusher(table, MultiprocessSettings(str(tmp_path), 1.0))
    for _ in range(3):
        recorder.hit()
    flusher.flush()
    cachewatch.mark_process_dead(os.getpid(), str(tmp_path))  # by mistake: it still runs
    assert aggregate_of(tmp_path)["jobs"].hits == 3  # read, then archived
    assert not (tmp_path / flusher.file_name).exists()
    recorder.hit()
    flusher.flush()
    assert aggregate_of(tmp_path)["jobs"].hits == 4


def test_a_forked_child_counts_only_what_it_did(tmp_path: Path) -> None:
    run_python(
        """
        import os, cachewatch
        cache = cachewatch.instrument({"k": 1}, "inherited")
        for _ in range(10):
            cache.get("k")                 # the parent's, before the fork
        children = []
        for n in (1, 2, 3):
            pid = os.fork()
            if pid == 0:
                for _ in range(100 * n):
                    cache.get("k")
                os._exit(0 if cachewatch.flush(exiting=True) else 1)
            children.append(pid)
        for pid in children:
            assert os.waitpid(pid, 0)[1] == 0
        """,
        tmp_path,
    )
    found = aggregate_of(tmp_path)["inherited"]
    assert found.hits == 10 + 600  # the parent's ten once, not four times
    assert found.size is None  # every process has ended


def test_a_missing_directory_is_one_log_line_and_the_application_runs_on(tmp_path: Path) -> None:
    missing = tmp_path / "not-there"
    stderr = run_python(
        """
        import logging, time, cachewatch
        logging.basicConfig(level=logging.INFO)
        cache = cachewatch.instrument({}, "app")
        for i in range(2000):
            cache[i] = i
            assert cache.get(i) == i
            if i % 500 == 0:
                time.sleep(0.15)           # several flush intervals pass
        print("done")
        """,
        missing,
    )
    lines = [line for line in stderr.splitlines() if "multi-process" in line]
    assert len(lines) == 1, stderr
    assert str(missing) in lines[0] and "not a directory" in lines[0]
    assert not missing.exists()


def test_an_unwritable_directory_is_one_log_line_until_it_is_writable(tmp_path: Path) -> None:
    """The application counts on while it cannot write; once the directory is writable
    again, its next flush gets through with everything it counted meanwhile."""
    directory = tmp_path / "shared"
    directory.mkdir()
    writable(directory, False)
    ready, opened = tmp_path / "ready", tmp_path / "opened"
    code = f"""
        import logging, os, time, cachewatch
        logging.basicConfig(level=logging.INFO)
        cache = cachewatch.instrument({{}}, "app")
        for i in range(40):
            cache[i] = i
            time.sleep(0.02)              # several failing flush intervals
        open({str(ready)!r}, "w").close()
        deadline = time.monotonic() + 30
        while not os.path.exists({str(opened)!r}) and time.monotonic() < deadline:
            time.sleep(0.05)
        while not cachewatch.flush() and time.monotonic() < deadline:
            time.sleep(0.05)
        """
    environ = {**os.environ, "CACHEWATCH_MULTIPROCESS_DIR": str(directory),
               "CACHEWATCH_MULTIPROCESS_FLUSH_INTERVAL": "0.1"}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], env=environ, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        writable(directory, True)
        opened.touch()
        _, stderr = process.communicate(timeout=60)
    finally:
        writable(directory, True)
        if process.poll() is None:
            process.kill()
            process.wait(5)
    assert process.returncode == 0, stderr
    lines = [line for line in stderr.splitlines() if "multi-process" in line]
    assert len(lines) == 2, stderr
    assert "cannot write" in lines[0] and str(directory) in lines[0]
    assert "again" in lines[1]
    assert aggregate_of(directory)["app"].puts == 40


def test_a_process_killed_outright_loses_at_most_its_last_flush_interval(tmp_path: Path) -> None:
    """SIGKILL: no last flush. What is lost is what the process counted after its last
    write, and that write is at most one flush interval (plus scheduling delay) old."""
    interval = 0.5
    code = """
        import sys, time, cachewatch
        cache = cachewatch.instrument({"k": 1}, "doomed")
        progress = open(sys.argv[1], "w")
        n = 0
        while True:
            for _ in range(1000):
                cache.get("k")
            n += 1000
            progress.seek(0); progress.write(f"{n} {time.time()}      "); progress.flush()
        """
    progress = tmp_path / "progress"
    environ = {**os.environ, "CACHEWATCH_MULTIPROCESS_DIR": str(tmp_path / "dir"),
               "CACHEWATCH_MULTIPROCESS_FLUSH_INTERVAL": f"{interval}s"}  # fmt: skip
    (tmp_path / "dir").mkdir()
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), str(progress)], env=environ
    )
    files: list[Path] = []
    try:
        deadline = time.monotonic() + 60  # the process may start slowly on a loaded machine
        while time.monotonic() < deadline and not (progress.exists() and files):
            time.sleep(0.05)
            files = [p for p in (tmp_path / "dir").iterdir() if p.suffix == ".proc"]
        assert files, "the process never wrote its file"
        started_at, counted_then = time.time(), int((progress.read_text().split() or ["0"])[0])
        time.sleep(2.0)
        process.kill()
        killed_at = time.time()
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    counted, _last = progress.read_text().split()
    last_write = max(p.stat().st_mtime for p in files)
    published = aggregate_of(tmp_path / "dir")["doomed"].hits
    lost = int(counted) - published
    rate = (int(counted) - counted_then) / (killed_at - started_at)
    assert 0 <= lost <= rate * (interval + 1.0) + 1000, (lost, rate)
    assert killed_at - last_write <= interval + 1.0  # generous: the machine is shared


def test_outside_multi_process_mode_the_public_calls_do_nothing(tmp_path: Path) -> None:
    assert cachewatch.flush() is False
    cachewatch.mark_process_dead(12345)  # no directory in the environment: nothing to mark
    cachewatch.mark_process_dead(12345, str(tmp_path / "missing"))  # never raises
