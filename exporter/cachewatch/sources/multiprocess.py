"""Multi-process mode, the reading side: the aggregate of every process's file in the shared
directory, as one source. Whichever process serves /metrics (a worker with
``make_wsgi_app()`` mounted, or ``cachewatch serve --multiprocess.dir``) polls it; the
analysis, /health and /report see the aggregate through the poller like any source.

Which processes are live (their entries and memory count): a file says so until its process
ends cleanly (its last flush says it exited), ``mark_process_dead(pid)`` marks it, or its
process is gone: checked by pid and start time when the file comes from this pid namespace,
by age otherwise (no rewrite for ``STALE_FLUSHES`` flush intervals, at least
``STALE_MIN_SECONDS``).

Dead processes' files are merged into one archive file (``cachewatch-archive.proc``) under
the directory's exclusive lock, then deleted, so that recycling workers for weeks does not
make every scrape read thousands of files. Files left by a previous run of the application
are dead processes' files like any other: their counts stay in the totals (counters do not
reset when the application restarts) and are archived; to start from zero, empty the
directory before the application starts. A file that cannot be read is skipped and counted
(``cachewatch_multiprocess_file_errors_total``); its last good reading, if this process had
one, stands in for it, so that no counter goes backwards.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric

from .. import catalog
from ..config.settings import MultiprocessSettings
from ..instrument import procfile
from ..instrument.flusher import pid_namespace
from ..instrument.procfile import FileFormatError, LayoutCache, ProcessFile
from ..instrument.recorder import Tally
from ..snapshot import SourceSnapshot
from .aggregate import Aggregate, aggregate
from .prometheus_files import PrometheusClientFiles

log = logging.getLogger(__name__)

STALE_FLUSHES = 10
STALE_MIN_SECONDS = 10.0
TEMP_MAX_AGE_SECONDS = 60.0
"""A writer's temporary file lives for milliseconds; older ones are a crashed writer's."""
SOURCE_NAME = "multiprocess"

PidCheck = Callable[[int, float], bool]


def pid_alive(pid: int, started: float) -> bool:
    """Whether process ``pid`` runs and is the one that started at ``started``."""
    import psutil

    try:
        process = psutil.Process(pid)
        with process.oneshot():
            if process.status() == psutil.STATUS_ZOMBIE:
                return False
            return abs(process.create_time() - started) < 1.0
    except psutil.NoSuchProcess:
        return False
    except (psutil.Error, OSError):
        return True  # there, but not ours to inspect: assume it is what it says


@dataclass
class _Known:
    """The last good reading of one file."""

    version: tuple[bytes, int, int]
    """Header, size and modification time: any rewrite or damage in place is read anew."""
    file: ProcessFile


@dataclass(frozen=True)
class _Entry:
    name: str
    file: ProcessFile
    mtime: float


@dataclass(frozen=True)
class _Reading:
    archive: ProcessFile | None
    entries: list[_Entry]
    markers: set[str]
    names: set[str]


class MultiprocessSource:
    """The aggregate of the processes' files in one directory (plus prometheus_client's)."""

    def __init__(
        self,
        settings: MultiprocessSettings,
        *,
        name: str = SOURCE_NAME,
        clock: Callable[[], float] = time.time,
        is_alive: PidCheck = pid_alive,
    ) -> None:
        self.name = name
        self.directory = settings.multiprocess_dir
        self.max_caches = settings.max_caches
        self.clock = clock
        self.is_alive = is_alive
        self.pid_namespace = pid_namespace()
        self.file_errors: dict[str, Tally] = {}
        self.archived = Tally()
        self._known: dict[str, _Known] = {}
        self._bad: dict[str, tuple[int, int]] = {}
        self._layouts = LayoutCache()
        self._unavailable: str | None = None
        self._last: tuple[tuple[tuple[int, bool], ...], Aggregate, list[ProcessFile]] | None = None
        """The last aggregate, its key (the files by identity, and their liveness) and the
        files themselves (held, so that no identity is reused while the key is kept)."""
        self._archive_failure: str | None = None
        self._client_files = PrometheusClientFiles(
            self.directory, lambda _path: self._count("prometheus_client")
        )

    # --- polling ---------------------------------------------------------------------------
    def poll(self) -> SourceSnapshot:
        start = time.perf_counter()
        now = self.clock()
        try:
            reading = self._read()
        except OSError as exc:
            reason = f"cannot read {self.directory}: {exc.strerror or exc}"
            if self._unavailable != reason:
                self._unavailable = reason
                log.warning("multi-process mode: %s", reason)
            return SourceSnapshot(
                source=self.name, up=False, timestamp=now,
                duration_seconds=time.perf_counter() - start, error=reason,
                extra_families=self._own_families(None, 0, 0),
            )  # fmt: skip
        if self._unavailable is not None:
            self._unavailable = None
            log.info("multi-process mode: reading %s again", self.directory)
        files: list[tuple[ProcessFile, bool]] = []
        dead: list[str] = []
        for entry in reading.entries:
            live = self._live(entry, reading.markers, now)
            files.append((entry.file, live))
            if not live:
                dead.append(entry.name)
        if reading.archive is not None:
            files.append((reading.archive, False))
        key = tuple((id(file), live) for file, live in files)
        if self._last is not None and self._last[0] == key:
            result = self._last[1]  # nothing changed since the last poll
        else:
            result = aggregate(files, self.max_caches, self.name)
            self._last = (key, result, [file for file, _live in files])
        if dead:
            self._archive(dead)
        live_count = sum(1 for _file, live in files if live)
        theirs = self._client_families()  # before ours: it may count damaged files
        extra = [*self._own_families(result, live_count, len(dead)), *theirs]
        return SourceSnapshot(
            source=self.name,
            up=True,
            timestamp=now,
            duration_seconds=time.perf_counter() - start,
            caches=result.caches,
            extra_families=extra,
        )

    def close(self) -> None:
        return None

    # --- reading ---------------------------------------------------------------------------
    def _read(self, *, lock: bool = True) -> _Reading:
        """Everything in the directory, under its shared lock (``lock=False`` when the caller
        holds the exclusive one: a second flock of ours would wait for ourselves)."""
        with procfile.locked(self.directory) if lock else contextlib.nullcontext():
            names = set(os.listdir(self.directory))
            archive = None
            if procfile.ARCHIVE_NAME in names:
                archive = self._load(procfile.ARCHIVE_NAME)
            merged = set(archive.file.meta.merged) if archive is not None else set()
            entries = []
            for name in sorted(names):
                if procfile.PROCESS_FILE.match(name) and name not in merged:
                    entry = self._load(name)
                    if entry is not None:
                        entries.append(entry)
        for gone in set(self._known) - names:
            del self._known[gone]
        markers = {name for name in names if procfile.MARKER_FILE.match(name)}
        return _Reading(archive.file if archive is not None else None, entries, markers, names)

    def _load(self, name: str) -> _Entry | None:
        """One file, decoded once per version; None when it is gone or was never good."""
        path = os.path.join(self.directory, name)
        known = self._known.get(name)
        try:
            with open(path, "rb") as handle:
                stat = os.fstat(handle.fileno())
                head = handle.read(procfile.HEADER_LIMIT)
                version = (procfile.read_header(head), stat.st_size, stat.st_mtime_ns)
                if known is not None and known.version == version:
                    return _Entry(name, known.file, stat.st_mtime)
                file = procfile.decode(head + handle.read(), self._layouts)
        except FileNotFoundError:
            return None
        except FileFormatError as exc:
            self._skip(name, exc.reason, path)
        except OSError as exc:
            self._skip(name, "unreadable", path, exc.strerror or str(exc))
        else:
            self._known[name] = _Known(version, file)
            self._bad.pop(name, None)
            return _Entry(name, file, stat.st_mtime)
        if known is None:
            return None
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            mtime = 0.0
        return _Entry(name, known.file, mtime)

    def _skip(self, name: str, reason: str, path: str, detail: str = "") -> None:
        """Count a bad file once per version of it, not once per scrape."""
        try:
            stat = os.stat(path)
            version = (stat.st_size, stat.st_mtime_ns)
        except OSError:
            version = (-1, -1)
        if self._bad.get(name) == version:
            return
        self._bad[name] = version
        self._count(reason)
        log.warning(
            "multi-process mode: skipping %s (%s%s)", path, reason, f": {detail}" if detail else ""
        )

    def _count(self, reason: str) -> None:
        self.file_errors.setdefault(reason, Tally()).inc()

    def _live(self, entry: _Entry, markers: set[str], now: float) -> bool:
        meta = entry.file.meta
        if meta.exited or procfile.marker_for(entry.name) in markers:
            return False
        if meta.pid_namespace and meta.pid_namespace == self.pid_namespace:
            return self.is_alive(meta.pid, meta.started)
        stale_after = max(STALE_MIN_SECONDS, STALE_FLUSHES * meta.flush_interval)
        return now - entry.mtime <= stale_after

    # --- archiving dead processes ----------------------------------------------------------
    def _archive(self, dead: Sequence[str]) -> None:
        """Merge dead processes' files into the archive and delete them; skipped when another
        process holds the directory's lock (it will be done at a later poll)."""
        try:
            with procfile.locked(self.directory, exclusive=True, wait=False) as held:
                if held:
                    self._archive_locked()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            if self._archive_failure != reason:
                self._archive_failure = reason
                log.warning(
                    "multi-process mode: cannot archive dead processes' files in %s: %s "
                    "(they are still read and counted)",
                    self.directory, reason,
                )  # fmt: skip

    def _archive_locked(self) -> None:
        reading = self._read(lock=False)
        now = self.clock()
        old = reading.archive
        dead = [e for e in reading.entries if not self._live(e, reading.markers, now)]
        if not dead:
            return
        files = [(entry.file, False) for entry in dead]
        if old is not None:
            files.append((old, False))
        result = aggregate(files, self.max_caches, self.name)
        still_there = [n for n in (old.meta.merged if old else ()) if n in reading.names]
        merged = tuple(sorted({*still_there, *(entry.name for entry in dead)}))
        meta = procfile.ProcessMeta(
            pid=0, token="archive", started=0.0, pid_namespace="", flush_interval=0.0,
            exited=True, dropped=result.dropped + result.folded, merged=merged,
        )  # fmt: skip
        caches = [(cache, result.first_seen[cache.name]) for cache in result.caches]
        procfile.write_atomically(
            self.directory, procfile.ARCHIVE_NAME, procfile.encode(meta, caches)
        )
        self.archived.add(len(dead))
        for name in merged:
            self._remove(name)
            self._remove(procfile.marker_for(name))
        self._remove_leftovers(reading.names, now)
        self._archive_failure = None

    def _remove_leftovers(self, names: set[str], now: float) -> None:
        """Markers of files that are gone, and temporary files of writers that crashed."""
        for name in names:
            if procfile.MARKER_FILE.match(name):
                if name[: -len(".dead")] + ".proc" not in names:
                    self._remove(name)
            elif name.startswith(".cachewatch-") and name.endswith(procfile.TEMP_SUFFIX):
                try:
                    age = now - os.stat(os.path.join(self.directory, name)).st_mtime
                except OSError:
                    continue
                if age > TEMP_MAX_AGE_SECONDS:
                    self._remove(name)

    def _remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(self.directory, name))

    # --- families --------------------------------------------------------------------------
    def _own_families(self, result: Aggregate | None, live: int, dead: int) -> list[Metric]:
        c = catalog
        f = c.families(
            [c.MULTIPROCESS_PROCESSES, c.MULTIPROCESS_FILE_ERRORS, c.MULTIPROCESS_ARCHIVED]
        )
        if result is not None:
            f[c.MULTIPROCESS_PROCESSES.name].add_metric(["live"], live)
            f[c.MULTIPROCESS_PROCESSES.name].add_metric(["dead"], dead)
        for reason, tally in sorted(self.file_errors.items()):
            f[c.MULTIPROCESS_FILE_ERRORS.name].add_metric([reason], tally.value)
        f[c.MULTIPROCESS_ARCHIVED.name].add_metric([], self.archived.value)
        families = list(f.values())
        if result is not None:
            dropped = c.CACHES_DROPPED.family()
            dropped.add_metric([], result.dropped + result.folded)
            families.append(dropped)
        return families

    def _client_families(self) -> list[Metric]:
        try:
            return self._client_files.collect()
        except Exception:  # their files must not break our scrape
            log.warning("prometheus_client's files could not be merged", exc_info=True)
            return []
