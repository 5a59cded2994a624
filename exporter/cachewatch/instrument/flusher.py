"""Multi-process mode, the writing side: each process writes its caches to its own file in
the shared directory, from a background thread, at most every flush interval and at exit.

The hot path does not change: counts stay where they are made (``itertools.count``) and the
flusher reads them as a scrape does, off the hot path. A process forked from one that had
already counted (gunicorn's ``--preload``, a ``multiprocessing`` pool) starts from what it
inherited: its file holds only what it counted itself, so nothing is counted twice.

"At exit" covers every way these processes end cleanly: ``atexit`` (gunicorn, uWSGI, plain
processes), multiprocessing's finalizers (``Pool``, ``ProcessPoolExecutor``, which leave by
``os._exit``), and ``cachewatch.flush(exiting=True)`` from a hook (Celery's
``worker_process_shutdown``). A process killed outright loses what it counted since its last
flush, one interval at most.

An application must never fail over its monitoring: a missing or unwritable directory is
one log line (and one more when it works again), and the flusher keeps trying.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..config.settings import MultiprocessSettings
from ..snapshot import CacheSnapshot, HistogramSnapshot
from . import procfile
from .forks import at_fork, weak_call

if TYPE_CHECKING:
    from .table import CacheTable

log = logging.getLogger(__name__)

FORK_WAIT_SECONDS = 5.0
"""Longest a fork waits for a flush in progress (the child must not inherit it half done)."""


def process_start_time(pid: int | None = None) -> float:
    """When the process started, as psutil reads it (the same in every process), so that a
    reused pid is not taken for the process that wrote a file."""
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.Error, OSError):
        return 0.0


def pid_namespace() -> str:
    """This process's pid namespace: pids of files from another namespace cannot be checked."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _minus(current: int, base: int) -> int:
    return max(0, current - base)


def _histogram_minus(current: HistogramSnapshot, base: HistogramSnapshot) -> HistogramSnapshot:
    if len(current.buckets) != len(base.buckets):
        return current
    buckets = tuple(
        (bound, _minus(count, old))
        for (bound, count), (_b, old) in zip(current.buckets, base.buckets, strict=True)
    )
    return dataclasses.replace(
        current,
        buckets=buckets,
        sum=max(0.0, current.sum - base.sum),
        count=_minus(current.count, base.count),
    )


def _keyed_minus(current: Mapping[Any, int], base: Mapping[Any, int]) -> dict[Any, int]:
    return {key: _minus(value, base.get(key, 0)) for key, value in current.items()}


def subtract(current: CacheSnapshot, base: CacheSnapshot | None) -> CacheSnapshot:
    """What a process counted itself: ``current`` less what it inherited (``base``, taken
    at the fork). Entries, memory, limits and the cleanup time are its own, not subtracted."""
    if base is None:
        return current
    latency = {
        op: _histogram_minus(h, base.latency[op]) if op in base.latency else h
        for op, h in current.latency.items()
    }
    cleanup = current.cleanup_duration
    if cleanup is not None and base.cleanup_duration is not None:
        cleanup = _histogram_minus(cleanup, base.cleanup_duration)
    return dataclasses.replace(
        current,
        hits=_minus(current.hits, base.hits),
        misses=_minus(current.misses, base.misses),
        puts=_minus(current.puts, base.puts),
        removals=_minus(current.removals, base.removals),
        evictions=_minus(current.evictions, base.evictions),
        expirations=_minus(current.expirations, base.expirations),
        cleanup_removed=_minus(current.cleanup_removed, base.cleanup_removed),
        errors=_keyed_minus(current.errors, base.errors),
        cleanups=_keyed_minus(current.cleanups, base.cleanups),
        cleanup_duration=cleanup,
        latency=latency,
    )


class ProcessFlusher:
    """Writes one table's caches to this process's file in ``settings.multiprocess_dir``."""

    def __init__(self, table: CacheTable, settings: MultiprocessSettings) -> None:
        self.table = table
        self.directory = settings.multiprocess_dir
        self.interval = settings.multiprocess_flush_interval
        self.flushes = 0
        """Files written or refreshed, for tests and benchmarks."""
        self._lock = threading.Lock()
        self._held_for_fork = False
        self._first_seen: dict[str, float] = {}
        self._thread: threading.Thread | None = None
        self._reset_identity()
        self._baseline: dict[str, CacheSnapshot] = {}
        self._baseline_dropped = 0

    def _reset_identity(self) -> None:
        self.pid = os.getpid()
        self.token = os.urandom(4).hex()
        self.started = process_start_time()
        self.pid_namespace = pid_namespace()
        self._stop = threading.Event()
        self._finished = False
        self._written: str | None = None
        self._last_payload: bytes | None = None
        self._last_absolute: dict[str, CacheSnapshot] = {}
        self._last_dropped = 0
        self._failing = False

    @property
    def file_name(self) -> str:
        return procfile.process_file_name(self.pid, self.token)

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> ProcessFlusher:
        """Flush every interval from a daemon thread, at exit, and in every forked child."""
        if not os.path.isdir(self.directory):
            self._cannot_write(f"{self.directory} is not a directory")
        self._start_thread()
        atexit.register(weak_call(self._at_exit))
        at_fork(
            before=self._before_fork,
            after_in_parent=self._after_fork_in_parent,
            after_in_child=self._after_fork_in_child,
        )
        self._hook_multiprocessing()
        return self

    def _start_thread(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name="cachewatch-multiprocess-flush", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        """Flush on a fixed schedule, not a fixed pause: a flush slowed down by a busy
        process (waiting for the interpreter lock) does not push the next one back."""
        due = time.monotonic() + self.interval
        while not self._stop.wait(max(0.0, due - time.monotonic())):
            due = max(due + self.interval, time.monotonic())
            try:
                self.flush()
            except Exception:  # the thread must outlive any one bad flush
                log.exception("multi-process flush failed")

    def close(self, timeout: float = 5.0) -> None:
        """The last flush (the file then says that this process has ended); stops the thread."""
        self._stop.set()
        self.flush(exiting=True)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _at_exit(self) -> None:
        if os.getpid() == self.pid:
            self.close()

    def _hook_multiprocessing(self) -> None:
        """``multiprocessing`` children leave by ``os._exit``, past ``atexit``: a finalizer
        of theirs runs the last flush (registered anew in each child as it starts)."""
        import multiprocessing.util as mp_util

        mp_util.Finalize(None, weak_call(self._at_exit), exitpriority=10)
        mp_util.register_after_fork(self, ProcessFlusher._hook_multiprocessing)

    def _before_fork(self) -> None:
        self._held_for_fork = self._lock.acquire(timeout=FORK_WAIT_SECONDS)

    def _after_fork_in_parent(self) -> None:
        if self._held_for_fork:
            self._held_for_fork = False
            self._lock.release()

    def _after_fork_in_child(self) -> None:
        """A new process: its own file, and what it inherited as the baseline."""
        self._lock = threading.Lock()
        self._held_for_fork = False
        self.table.after_fork()
        self._reset_identity()
        self._baseline = {r.name: r.snapshot() for r in self.table.recorders()}
        self._baseline_dropped = self.table.dropped.value
        self._start_thread()

    # --- flushing --------------------------------------------------------------------------
    def flush(self, *, exiting: bool = False) -> bool:
        """Write this process's file now; True when it was written. ``exiting``: the last
        one (the process is ending); nothing is written after it."""
        with self._lock:
            if self._finished:
                return False
            if exiting:
                self._finished = True
            return self._flush(exiting)

    def _flush(self, exiting: bool) -> bool:
        now = time.time()
        absolute = {r.name: r.snapshot() for r in self.table.recorders()}
        for name in absolute:
            self._first_seen.setdefault(name, now)
        dropped = self.table.dropped.value
        try:
            with procfile.locked(self.directory):
                if self._written is not None and not os.path.exists(self._path(self._written)):
                    self._rebase()
                payload = self._payload(absolute, dropped, exiting)
                if payload == self._last_payload and self._written == self.file_name:
                    os.utime(self._path(self.file_name))
                else:
                    procfile.write_atomically(self.directory, self.file_name, payload)
        except OSError as exc:
            self._cannot_write(f"cannot write {self._path(self.file_name)}: {exc.strerror or exc}")
            return False
        if self._failing:
            self._failing = False
            log.info("multi-process mode: writing %s again", self._path(self.file_name))
        self._written = self.file_name
        self._last_payload = payload
        self._last_absolute = absolute
        self._last_dropped = dropped
        self.flushes += 1
        return True

    def _cannot_write(self, reason: str) -> None:
        """One log line when writing stops working (and one when it works again)."""
        if not self._failing:
            self._failing = True
            log.warning(
                "multi-process mode: %s; this process's cache metrics are left out of the "
                "aggregate until it can write there (the application is not affected)",
                reason,
            )

    def _rebase(self) -> None:
        """Our file was archived while we live (marked dead by mistake, or seen as stale from
        another pid namespace): the archive holds what it held, so start a new file that
        counts from there."""
        log.info("multi-process mode: %s was archived; continuing in a new file", self._written)
        self._baseline = self._last_absolute
        self._baseline_dropped = self._last_dropped
        self.token = os.urandom(4).hex()
        self._written = None
        self._last_payload = None

    def _payload(self, absolute: Mapping[str, CacheSnapshot], dropped: int, exiting: bool) -> bytes:
        meta = procfile.ProcessMeta(
            pid=self.pid,
            token=self.token,
            started=self.started,
            pid_namespace=self.pid_namespace,
            flush_interval=self.interval,
            exited=exiting,
            dropped=max(0, dropped - self._baseline_dropped),
        )
        caches = [
            (subtract(snapshot, self._baseline.get(name)), self._first_seen[name])
            for name, snapshot in absolute.items()
        ]
        return procfile.encode(meta, caches)

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, name)


_flusher: ProcessFlusher | None = None
_flusher_lock = threading.Lock()


def start_flusher(table: CacheTable, settings: MultiprocessSettings) -> ProcessFlusher:
    """The process-wide flusher of the default table (one per process)."""
    global _flusher
    with _flusher_lock:
        if _flusher is None:
            _flusher = ProcessFlusher(table, settings).start()
        return _flusher


def current_flusher() -> ProcessFlusher | None:
    return _flusher


def flush(exiting: bool = False) -> bool:
    """Write this process's caches to the multi-process directory now (see
    ``cachewatch.flush``); False outside multi-process mode or when it cannot be written."""
    flusher = _flusher
    return flusher.flush(exiting=exiting) if flusher is not None else False


def mark_process_dead(pid: int, directory: str) -> list[str]:
    """Mark process ``pid``'s files as a dead process's (see ``cachewatch.mark_process_dead``);
    never raises, as it runs in hooks of the application server."""
    try:
        return procfile.mark_dead(directory, int(pid))
    except OSError as exc:
        log.warning(
            "multi-process mode: cannot mark process %s dead in %s: %s",
            pid, directory, exc.strerror or exc,
        )  # fmt: skip
        return []
