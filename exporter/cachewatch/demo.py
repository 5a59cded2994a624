"""The demo: four in-process caches under a seeded synthetic workload that cycles through
phases, so every metric, trend, alert and dashboard panel moves with nothing else installed.

Phases (one cycle is ``CYCLE_SECONDS / speed`` long):
  steady       Zipf-distributed keys over a small key space: high hit ratios.
  cold         search, embedding and file key spaces widen 30x: hit ratios fall, evictions
               rise, file reads fail more often (a quarter of the loads).
  growth       embedding values grow 4x and file_cache cleanups stop: memory climbs toward
               its limit and the cleanup stalls.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import LRUCache, TTLCache

from .config import Config
from .instrument.lru import watch_lru
from .instrument.mapping import InstrumentedMapping, instrument
from .instrument.operation import trace_cache_operation
from .instrument.table import CacheTable, cache_metrics, default_table

log = logging.getLogger(__name__)

CYCLE_SECONDS = 600.0
PHASES: tuple[tuple[str, float], ...] = (("steady", 0.4), ("cold", 0.3), ("growth", 0.3))
OPS_PER_TICK = 200
TICK_SECONDS = 0.1
EMBEDDING_MEMORY_LIMIT = 64 * 1024 * 1024


DEMO_TIME_COMPRESSION = 20.0
"""The demo compresses the analysis's durations left at their defaults by this times its
speed, so that alerts pend, fire, escalate and resolve within the demo's phases."""
_DEMO_SCALED = {
    # setting: least multiple of the sample interval it may shrink to
    "trend_window": 20.0,
    "alert_rate_window": 4.0,
    "alert_for_seconds": 2.0,
    "alert_escalate_after_seconds": 4.0,
    "alert_notify_cooldown_seconds": 0.0,
}


def demo_analysis_config(config: Config) -> Config:
    """The demo's analysis settings: defaults compressed, explicit settings kept as given."""
    factor = DEMO_TIME_COMPRESSION * max(config.demo_speed, 0.01)
    defaults = Config()
    changes = {
        name: max(floor * config.sample_interval, getattr(defaults, name) / factor)
        for name, floor in _DEMO_SCALED.items()
        if getattr(config, name) == getattr(defaults, name)
    }
    if changes:
        log.info(
            "demo: analysis durations compressed %gx: %s",
            factor,
            " ".join(f"{name}={value:g}s" for name, value in changes.items()),
        )
    return dataclasses.replace(config, **changes)


class Zipf:
    """Samples ranks 0..n-1 with probability proportional to 1/(rank+1)^s."""

    def __init__(self, n: int, s: float = 1.1) -> None:
        weights = [1.0 / (rank + 1) ** s for rank in range(n)]
        self._cdf = list(itertools.accumulate(weights))
        self._total = self._cdf[-1]

    def sample(self, rng: random.Random) -> int:
        return bisect.bisect_left(self._cdf, rng.random() * self._total)


class BackendError(OSError):
    """A simulated failure of the slow backend behind a cache."""


@dataclass
class PhaseClock:
    """Which phase the workload is in, from elapsed time and speed (injectable for tests)."""

    speed: float = 1.0
    start: float = 0.0
    now: Callable[[], float] = time.monotonic

    def phase(self) -> str:
        cycle = CYCLE_SECONDS / self.speed
        position = ((self.now() - self.start) % cycle) / cycle
        for name, share in PHASES:
            if position < share:
                return name
            position -= share
        return PHASES[-1][0]


class DemoWorkload:
    """The four demo caches and the operations that drive them."""

    def __init__(
        self, seed: int = 42, speed: float = 1.0, registry: CacheTable | None = None
    ) -> None:
        self.rng = random.Random(seed)
        self.clock = PhaseClock(speed=speed, start=time.monotonic())
        self.registry = registry or default_table()
        self.embeddings: InstrumentedMapping[str, bytes] = instrument(
            LRUCache(maxsize=4000),
            "embedding_cache",
            memory_limit_bytes=EMBEDDING_MEMORY_LIMIT,
            registry=registry,
        )
        self.search: InstrumentedMapping[str, list[str]] = instrument(
            TTLCache(maxsize=5000, ttl=20), "search_cache", registry=registry
        )
        self.files: InstrumentedMapping[str, bytes] = instrument(
            {}, "file_cache", max_entries=3000, registry=registry
        )
        self.file_recorder = cache_metrics("file_cache", registry=registry)
        self._file_written: dict[str, float] = {}
        self.project_lookup = watch_lru(
            functools.lru_cache(maxsize=512)(self._load_project), "project_cache", registry=registry
        )
        self._zipf_small = Zipf(1000, s=1.2)
        self._zipf_large = Zipf(50000, s=0.8)
        self._zipf_projects = Zipf(400)
        self.operations = 0
        self._last_cleanup = time.monotonic()

    @staticmethod
    def _load_project(project_id: int) -> dict[str, object]:
        return {"id": project_id, "name": f"project-{project_id}", "members": list(range(8))}

    def _key(self, phase: str) -> int:
        """Steady: a small, skewed key space. Cold: a wide, flat one that shares no keys."""
        if phase == "cold":
            return 1_000_000 + self._zipf_large.sample(self.rng)
        return self._zipf_small.sample(self.rng)

    def _embedding(self, phase: str) -> None:
        key = f"emb:{self._key(phase)}"
        if self.embeddings.get(key) is None:
            dims = 1536 if phase == "growth" else 384
            self.embeddings[key] = self.rng.randbytes(dims * 4)

    def _search(self, phase: str) -> None:
        key = f"q:{self._key(phase)}"
        if self.search.get(key) is None:
            self.search[key] = [f"doc-{self.rng.randrange(10**6)}" for _ in range(10)]

    def _file(self, phase: str) -> None:
        # Cold: the wide key space too, so loads (and their failures) become frequent.
        path = f"/srv/files/{self._key(phase)}.txt"
        if self.files.get(path) is not None:
            return
        failure_rate = 0.25 if phase == "cold" else 0.01
        try:
            with trace_cache_operation("load", "file_cache", path, registry=self.registry):
                if self.rng.random() < failure_rate:
                    raise BackendError("backend unavailable")
        except BackendError:
            return
        self.files[path] = self.rng.randbytes(512)
        self._file_written[path] = time.monotonic()

    def _cleanup_files(self, phase: str) -> None:
        """Every 10 s remove files written more than 60 s ago, as a periodic janitor would
        (both divided by the speed, so that a stalled cleanup shows at any speed)."""
        speed = self.clock.speed
        if phase == "growth" or time.monotonic() - self._last_cleanup < 10 / speed:
            return
        start = time.perf_counter()
        cutoff = time.monotonic() - 60 / speed
        stale = [path for path, written in self._file_written.items() if written < cutoff]
        for path in stale:
            self.files.pop(path, None)
            del self._file_written[path]
        self.file_recorder.cleanup(len(stale), time.perf_counter() - start, "scheduled")
        self._last_cleanup = time.monotonic()

    def tick(self, operations: int = OPS_PER_TICK) -> None:
        """Run one batch of operations across the four caches."""
        phase = self.clock.phase()
        for _ in range(operations):
            pick = self.rng.random()
            if pick < 0.4:
                self._search(phase)
            elif pick < 0.7:
                self._embedding(phase)
            elif pick < 0.85:
                self._file(phase)
            else:
                self.project_lookup(self._zipf_projects.sample(self.rng))
        self._cleanup_files(phase)
        self.operations += operations

    def summary(self) -> str:
        parts = [f"phase={self.clock.phase()}", f"ops={self.operations}"]
        for recorder in sorted(self.registry.recorders(), key=lambda r: r.name):
            snap = recorder.snapshot()
            ratio = snap.hits / snap.gets if snap.gets else 0.0
            parts.append(f"{snap.name}={ratio:.0%}")
        return " ".join(parts)


class DemoRunner:
    """Runs the workload in a background thread until stopped."""

    def __init__(self, workload: DemoWorkload) -> None:
        self.workload = workload
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cachewatch-demo", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.workload.tick()
            except Exception:
                log.exception("demo workload step failed")
            self._stop.wait(max(0.0, TICK_SECONDS - (time.monotonic() - started)))

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
