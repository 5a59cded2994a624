"""The demo: four in-process caches under a seeded synthetic workload that cycles through
phases, so every metric, trend, alert and dashboard panel moves with nothing else installed.

Phases (one cycle is ``CYCLE_SECONDS / speed`` long, 5 minutes at speed 1):
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
from typing import Any

from cachetools import LRUCache, TTLCache

from .config import Config
from .instrument.lru import watch_lru
from .instrument.mapping import InstrumentedMapping, instrument
from .instrument.operation import trace_cache_operation
from .instrument.table import CacheTable, cache_metrics, default_table

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Phase:
    name: str
    share: float
    """Its share of the cycle."""
    story: str
    """What changes when it starts, as the demo announces it."""


CYCLE_SECONDS = 300.0
PHASES: tuple[Phase, ...] = (
    Phase("steady", 0.2, "small, skewed key spaces: hit ratios stay high"),
    Phase("cold", 0.4, "key spaces widen 30x: hit ratios fall, evictions and errors rise"),
    Phase("growth", 0.4, "embeddings grow 4x and file cleanups stop: memory climbs"),
)
OPS_PER_TICK = 200
TICK_SECONDS = 0.1
STEADY_KEYS, COLD_KEYS, PROJECTS = 1000, 50000, 400
EMBEDDING_MEMORY_LIMIT = 64 * 1024 * 1024


DEMO_SAMPLE_INTERVAL, MIN_DEMO_SAMPLE_INTERVAL = 5.0, 0.25
"""The demo's sample interval at speed 1 (when left at its default), and its floor."""
DEMO_PACE: dict[str, tuple[float, float]] = {
    # setting: (its value at speed 1, the least multiple of the sample interval it may be)
    "trend_window": (CYCLE_SECONDS, 20.0),
    "alert_rate_window": (30.0, 4.0),
    "alert_for_seconds": (15.0, 2.0),
    "alert_escalate_after_seconds": (60.0, 4.0),
    "alert_notify_cooldown_seconds": (15.0, 0.0),
}
"""The analysis at the demo's pace: at speed 1 the cold phase starts after a minute and its
first alerts fire about half a minute later; the trend window spans one cycle. Each value is
divided by ``--demo.speed``."""


def demo_analysis_config(config: Config) -> Config:
    """The demo's analysis settings: those left at their defaults follow the demo's pace and
    ``--demo.speed``; explicit settings are kept as given."""
    speed = max(config.demo_speed, 0.01)
    defaults = Config()
    changes: dict[str, Any] = {}
    if config.sample_interval == defaults.sample_interval:
        changes["sample_interval"] = max(MIN_DEMO_SAMPLE_INTERVAL, DEMO_SAMPLE_INTERVAL / speed)
    interval = changes.get("sample_interval", config.sample_interval)
    for name, (at_speed_1, floor) in DEMO_PACE.items():
        if getattr(config, name) == getattr(defaults, name):
            changes[name] = max(floor * interval, at_speed_1 / speed)
    if changes:
        log.info(
            "demo: analysis at the demo's pace (speed %g): %s",
            speed,
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

    def elapsed(self) -> float:
        return self.now() - self.start

    def current(self) -> Phase:
        cycle = CYCLE_SECONDS / self.speed
        position = (self.elapsed() % cycle) / cycle
        for phase in PHASES:
            if position < phase.share:
                return phase
            position -= phase.share
        return PHASES[-1]

    def phase(self) -> str:
        return self.current().name


LATENCY_SAMPLE_EVERY = 64
"""The demo times one in-process lookup in 64 (``instrument()`` counts without timing by
default) so that its latency panels and the latency alert have something to show."""


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
            latency_sample_every=LATENCY_SAMPLE_EVERY,
            registry=registry,
        )
        self.search: InstrumentedMapping[str, list[str]] = instrument(
            TTLCache(maxsize=5000, ttl=20),
            "search_cache",
            latency_sample_every=LATENCY_SAMPLE_EVERY,
            registry=registry,
        )
        self.files: InstrumentedMapping[str, bytes] = instrument(
            {},
            "file_cache",
            max_entries=3000,
            latency_sample_every=LATENCY_SAMPLE_EVERY,
            registry=registry,
        )
        self.file_recorder = cache_metrics("file_cache", registry=registry)
        self._file_written: dict[str, float] = {}
        self.project_lookup = watch_lru(
            functools.lru_cache(maxsize=512)(self._load_project), "project_cache", registry=registry
        )
        self._zipf_small = Zipf(STEADY_KEYS, s=1.2)
        self._zipf_large = Zipf(COLD_KEYS, s=0.8)
        self._zipf_projects = Zipf(PROJECTS)
        self.operations = 0
        self._last_cleanup = time.monotonic()
        self.warm()

    def warm(self) -> None:
        """Load every key of the steady phase once, as a running service's caches hold them:
        the story starts steady, not with caches filling from empty (whose climbing memory
        would forecast a full cache before anything happened)."""
        for rank in range(STEADY_KEYS):
            self._embedding("steady", rank)
            self._search("steady", rank)
            self._file("steady", rank)
        for project in range(PROJECTS):
            self.project_lookup(project)

    @staticmethod
    def _load_project(project_id: int) -> dict[str, object]:
        return {"id": project_id, "name": f"project-{project_id}", "members": list(range(8))}

    def _key(self, phase: str) -> int:
        """Steady: a small, skewed key space. Cold: a wide, flat one that shares no keys."""
        if phase == "cold":
            return 1_000_000 + self._zipf_large.sample(self.rng)
        return self._zipf_small.sample(self.rng)

    def _embedding(self, phase: str, rank: int | None = None) -> None:
        key = f"emb:{self._key(phase) if rank is None else rank}"
        if self.embeddings.get(key) is None:
            dims = 1536 if phase == "growth" else 384
            self.embeddings[key] = self.rng.randbytes(dims * 4)

    def _search(self, phase: str, rank: int | None = None) -> None:
        key = f"q:{self._key(phase) if rank is None else rank}"
        if self.search.get(key) is None:
            self.search[key] = [f"doc-{self.rng.randrange(10**6)}" for _ in range(10)]

    def _file(self, phase: str, rank: int | None = None) -> None:
        # Cold: the wide key space too, so loads (and their failures) become frequent.
        path = f"/srv/files/{self._key(phase) if rank is None else rank}.txt"
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
