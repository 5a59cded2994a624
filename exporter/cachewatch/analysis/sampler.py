"""The sampler: every ``sample_interval`` takes a round of snapshots and feeds trends and
alert states.

A daemon thread calls ``sample_recent()``, which reuses the round of the last scrape when it
is no older than one interval (so Redis is not polled twice per interval); tests call
``sample(now=...)`` (always a fresh round) or ``feed(snapshots, now)`` directly with their
own clock, so nothing in the analysis depends on sleeping.
``TrendCollector`` publishes the catalogue's trend gauges from the latest sample.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from .. import catalog
from ..config.settings import AnalysisSettings
from ..instrument.forks import at_fork
from ..snapshot import FamilyCache, SourceSnapshot
from ..sources.poller import Poller
from .alerts import AlertEvaluator, Transition
from .resources import MemoryUsage, memory_usage
from .signals import CacheSignals, CacheTracker
from .thresholds import AlertRules

log = logging.getLogger(__name__)

Clock = Callable[[], float]
MAX_FIT_CAPACITY = 100_000
FORK_WAIT_SECONDS = 5.0


class Sampler:
    """Owns one tracker per cache and the alert evaluator; thread-safe to read."""

    def __init__(
        self,
        poller: Poller,
        config: AnalysisSettings,
        *,
        clock: Clock = time.time,
        in_process_sources: Iterable[str] = ("local",),
    ) -> None:
        self.poller = poller
        self.config = config
        self.clock = clock
        self.interval = config.sample_interval
        self.in_process_sources = frozenset(in_process_sources)
        self.rules = AlertRules(config)
        self.evaluator = AlertEvaluator(self.rules)
        self._capacity = min(
            MAX_FIT_CAPACITY, max(16, int(config.trend_window / config.sample_interval) + 16)
        )
        self._trackers: dict[str, CacheTracker] = {}
        self._signals: dict[str, CacheSignals] = {}
        self._round: list[CacheSignals] = []
        """The signals of the last round, which the alert states were evaluated on."""
        self._sources: dict[str, SourceSnapshot] = {}
        self._lock = threading.Lock()
        self._sample_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fork_hooked = False
        self._held_for_fork = False
        self._resume_on_use = False
        self.last_sample: float | None = None
        self.started_at: float | None = None
        self.samples = 0
        self.failures = 0

    # --- sampling ------------------------------------------------------------------------------
    def sample(self, now: float | None = None) -> dict[str, CacheSignals]:
        """Poll every source now and feed the snapshots in."""
        return self.feed(self.poller.poll(), now)

    def sample_recent(self) -> dict[str, CacheSignals]:
        """Feed in the poller's last round when it is at most one interval old (a scrape
        made it), else a fresh one; the sample is dated when its round was taken."""
        snapshots, age = self.poller.recent(self.interval)
        return self.feed(snapshots, self.clock() - age)

    def feed(
        self, snapshots: Sequence[SourceSnapshot], now: float | None = None
    ) -> dict[str, CacheSignals]:
        """Update trends and alert states from one round of snapshots taken at ``now``."""
        now = self.clock() if now is None else now
        with self._sample_lock:
            if self.last_sample is not None and now < self.last_sample:
                now = self.last_sample  # trends need time order; a round is never older

            signals: dict[str, CacheSignals] = {}
            for snapshot in snapshots:
                for cache in snapshot.caches if snapshot.up else ():
                    tracker = self._trackers.get(cache.name)
                    if tracker is None:
                        tracker = self._trackers[cache.name] = CacheTracker(
                            cache.name,
                            self.config.trend_window,
                            self.config.alert_rate_window,
                            self._capacity,
                        )
                    signals[cache.name] = tracker.update(cache, now)
            with self._lock:
                for snapshot in snapshots:
                    self._sources[snapshot.source] = snapshot
                for name, tracker in list(self._trackers.items()):
                    if name in signals:
                        self._signals[name] = signals[name]
                    elif now - tracker.last_seen > self.config.trend_window:
                        del self._trackers[name]
                        self._signals.pop(name, None)
                sources = {name: s.up for name, s in self._sources.items()}
                self._round = list(signals.values())
                self.last_sample = now
                self.samples += 1
            self.evaluator.evaluate(now, signals.values(), sources)
        return signals

    def reevaluate(self) -> list[Transition]:
        """Evaluate the alert states again on the last round, now: after the thresholds
        changed, the states, their gauges and /alerts follow at once."""
        with self._sample_lock:
            with self._lock:
                caches = list(self._round)
                sources = {name: s.up for name, s in self._sources.items()}
            return self.evaluator.evaluate(self.clock(), caches, sources)

    # --- reading -------------------------------------------------------------------------------
    def signals(self) -> dict[str, CacheSignals]:
        """The latest signals of every cache seen within the trend window."""
        self._resume_if_forked()
        with self._lock:
            return dict(self._signals)

    def history(self, cache: str) -> dict[str, list[tuple[float, float]]]:
        """The samples of the trend window behind the fits: ``hit_ratio`` (each over the rate
        window) and ``memory_bytes``, oldest first; empty for a cache not sampled."""
        with self._sample_lock:
            tracker = self._trackers.get(cache)
            if tracker is None:
                return {}
            return {
                "hit_ratio": tracker.ratio_fit.samples,
                "memory_bytes": tracker.memory_fit.samples,
            }

    def sources(self) -> dict[str, SourceSnapshot]:
        self._resume_if_forked()
        with self._lock:
            return dict(self._sources)

    def memory(self) -> MemoryUsage | None:
        signals = self.signals().values()
        in_process = sum(
            s.snapshot.memory_bytes or 0.0 for s in signals if s.source in self.in_process_sources
        )
        return memory_usage(in_process, sum(s.snapshot.memory_bytes or 0.0 for s in signals))

    def freshness(self, now: float | None = None) -> tuple[bool, float | None]:
        """(fresh, seconds since the last sample): stale after three missed intervals."""
        self._resume_if_forked()
        now = self.clock() if now is None else now
        allowed = 3 * self.interval + 5.0
        if self.last_sample is None:
            started = self.started_at if self.started_at is not None else now
            return now - started <= allowed, None
        age = max(0.0, now - self.last_sample)
        return age <= allowed, age

    # --- the background thread -----------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self.started_at = self.clock()
        self._thread = threading.Thread(target=self._run, name="cachewatch-sampler", daemon=True)
        self._thread.start()
        if not self._fork_hooked:
            self._fork_hooked = True
            at_fork(
                before=self._before_fork,
                after_in_parent=self._after_fork_in_parent,
                after_in_child=self._after_fork_in_child,
            )

    def _before_fork(self) -> None:
        """No fork in the middle of a sample: the child would inherit its locks held."""
        self._held_for_fork = self._sample_lock.acquire(timeout=FORK_WAIT_SECONDS)

    def _after_fork_in_parent(self) -> None:
        if self._held_for_fork:
            self._held_for_fork = False
            self._sample_lock.release()

    def _after_fork_in_child(self) -> None:
        """A forked child inherits the sampler but not its thread. A child that serves
        (a gunicorn or uWSGI worker) samples again from its first request that reads the
        analysis; one that never serves (a pool worker) starts no thread."""
        self._lock = threading.Lock()
        self._sample_lock = threading.Lock()
        self._held_for_fork = False
        if self._thread is not None and not self._stop.is_set():
            self._thread = None
            self._resume_on_use = True
            self.last_sample = None  # the parent's; this process has not sampled yet

    def _resume_if_forked(self) -> None:
        if self._resume_on_use:
            self._resume_on_use = False
            self.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.sample_recent()
            except Exception:
                self.failures += 1
                log.exception("analysis sample failed")
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


_TRENDS = (
    catalog.HIT_RATIO, catalog.MEMORY_GROWTH, catalog.SIZE_GROWTH, catalog.HIT_RATIO_CHANGE,
    catalog.MEMORY_FULL, catalog.CLEANUPS_PER_HOUR,
)  # fmt: skip
TrendValues = tuple[float | None, ...]


def _trend_values(signals: Mapping[str, CacheSignals]) -> list[tuple[str, TrendValues]]:
    """Each cache's trend gauges in the order of ``_TRENDS`` (None: not known), by name."""
    return [
        (
            name,
            (
                s.trend_hit_ratio,
                s.memory_growth_bytes_per_second,
                s.size_growth_per_second,
                s.hit_ratio_change_per_hour,
                s.memory_full_seconds,
                s.cleanups_per_hour if s.snapshot.cleanups else None,
            ),
        )
        for name, s in sorted(signals.items())
    ]


def _trend_families(rows: list[tuple[str, TrendValues]], last: float | None) -> Iterator[Metric]:
    """The trend gauges of ``rows`` and the time of the last sample."""
    f = catalog.families(_TRENDS)
    for name, values in rows:
        for spec, value in zip(_TRENDS, values, strict=True):
            if value is not None:
                f[spec.name].add_metric([name], value)
    yield from f.values()
    if last is not None:
        family = catalog.LAST_SAMPLE.family()
        family.add_metric([], last)
        yield family


class TrendCollector(Collector):
    """The trend and forecast gauges, the cleanup rhythm, and process and host memory."""

    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler
        self._trends = FamilyCache()
        """The trend gauges move only when the sampler samples: kept between samples."""

    def collect(self) -> Iterator[Metric]:
        c = catalog
        rows = _trend_values(self.sampler.signals())
        last = self.sampler.last_sample
        key = (tuple((name, tuple(map(repr, values))) for name, values in rows), repr(last))
        yield from self._trends.get(key, lambda: _trend_families(rows, last))
        usage = self.sampler.memory()
        if usage is not None:
            m = c.families(
                [c.HOST_MEMORY_TOTAL, c.HOST_MEMORY_AVAILABLE, c.PROCESS_MEMORY,
                 c.CACHES_MEMORY_SHARE]
            )  # fmt: skip
            m[c.HOST_MEMORY_TOTAL.name].add_metric([], usage.host_total_bytes)
            m[c.HOST_MEMORY_AVAILABLE.name].add_metric([], usage.host_available_bytes)
            m[c.PROCESS_MEMORY.name].add_metric([], usage.process_rss_bytes)
            for scope, share in (("process", usage.process_share), ("host", usage.host_share)):
                if share is not None:
                    m[c.CACHES_MEMORY_SHARE.name].add_metric([scope], share)
            yield from m.values()
