"""The budgeted key census: entries and memory of each logical cache (key prefix) in Redis.

It never blocks Redis: each step SCANs at most a budget of keys (never KEYS, never a full
pass at once) and measures a small sample of them with MEMORY USAGE. Steps continue the same
SCAN cursor, so a full pass over the key space is spread over many steps.

Where a step is in the key space is read from the SCAN cursor itself: Redis walks its hash
table in reverse-binary cursor order, so the bit-reversed cursor divided by 2**64 is the share
of the hash space covered so far, whatever the table's size. That gives

* before the first full pass, estimates scaled up by that share (keys hash uniformly), and
* after it, an exact count over a sliding window of exactly one cycle of the key space: the
  part covered by the current pass plus the rest of the previous pass.

Each estimate carries its coverage, age and memory sampling, published next to it.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from .. import catalog
from ..config.redisurl import CachePrefix
from ..snapshot import FamilyCache

MAX_STEPS_PER_PASS = 2048
"""Steps kept per pass; beyond it neighbours are merged (bounds memory at any key count)."""


class CensusClient(Protocol):
    """The two Redis calls the census makes."""

    def scan(self, cursor: int, count: int) -> tuple[int, list[bytes]]: ...

    def memory_usage(self, keys: Sequence[bytes]) -> list[int | None]: ...


def cursor_position(cursor: int) -> float:
    """Share of the hash space a SCAN pass has covered when Redis returns ``cursor``."""
    if cursor == 0:
        return 1.0
    reversed_bits = int(f"{cursor & (2**64 - 1):064b}"[::-1], 2)
    return reversed_bits / 2.0**64


@dataclass
class _Step:
    """What one census step saw: a slice [start, end) of the hash space."""

    start: float
    end: float
    time: float
    counts: list[int]
    unmatched: int
    memory_sum: list[float]
    memory_samples: list[int]

    def merge(self, later: _Step) -> _Step:
        return _Step(
            self.start,
            later.end,
            self.time,
            [a + b for a, b in zip(self.counts, later.counts, strict=True)],
            self.unmatched + later.unmatched,
            [a + b for a, b in zip(self.memory_sum, later.memory_sum, strict=True)],
            [a + b for a, b in zip(self.memory_samples, later.memory_samples, strict=True)],
        )


@dataclass(frozen=True)
class CacheEstimate:
    """One logical cache's entries and memory, with how much of it was seen and when."""

    name: str
    size: float
    memory_bytes: float | None
    coverage: float
    oldest: float
    sampled_keys: int
    sample_ratio: float


@dataclass(frozen=True)
class CensusReport:
    """The census's state after its last step."""

    estimates: tuple[CacheEstimate, ...]
    progress: float
    passes: int
    keys_scanned: int
    unmatched: float | None
    last_pass_duration: float | None
    errors: int


class KeyCensus:
    """Incremental SCAN over one database with a per-step budget; thread-safe to read."""

    def __init__(
        self,
        caches: Sequence[CachePrefix],
        *,
        keys_per_step: int = 1500,
        samples_per_step: int = 32,
        scan_count: int = 1000,
        clock: Callable[[], float] = time.time,
        seed: int | None = None,
    ) -> None:
        self.caches = list(caches)
        # Longest prefix first: a key belongs to the most specific cache.
        order = sorted(range(len(self.caches)), key=lambda i: -len(self.caches[i].prefix))
        self._match = [(self.caches[i].prefix.encode(), i) for i in order]
        self.keys_per_step = keys_per_step
        self.samples_per_step = samples_per_step
        self.scan_count = scan_count
        self.clock = clock
        self._random = random.Random(seed)
        self._cursor = 0
        self._position = 0.0
        self._current: list[_Step] = []
        self._previous: list[_Step] | None = None
        self._previous_foreign = False
        """The previous pass was made on another server (before a master switch)."""
        self._restarts = 0
        self._pass_started: float | None = None
        self._passes = 0
        self._keys_scanned = 0
        self._last_pass_duration: float | None = None
        self._errors = 0
        self._memory_allowed = samples_per_step > 0
        self._sample_offset = 0
        self._mean_size: list[float | None] = [None] * len(self.caches)
        self._lock = threading.Lock()
        self._report = CensusReport((), 0.0, 0, 0, None, None, 0)

    @property
    def memory_allowed(self) -> bool:
        return self._memory_allowed

    def restart(self) -> None:
        """Start a new pass on another server holding the same keys (the master Sentinel
        names after a failover): the cursor of the old one means nothing there. The last
        full pass keeps the estimates going, but counts as seen on this server only as far
        as the new pass has come, so coverage says how much is exact."""
        with self._lock:
            self._cursor, self._position = 0, 0.0
            self._current, self._pass_started = [], None
            self._previous_foreign = self._previous is not None
            self._restarts += 1

    def failed(self) -> None:
        """Count a step that could not run (Redis down); the cursor is kept."""
        with self._lock:
            self._errors += 1
            self._report = self._build_report()

    def step(self, client: CensusClient) -> None:
        """One budgeted increment: SCAN up to the key budget, sample, update the estimates."""
        started = self.clock()
        with self._lock:
            cursor, position, generation = self._cursor, self._position, self._restarts
        n = len(self.caches)
        counts = [0] * n
        matched: list[list[bytes]] = [[] for _ in range(n)]
        unmatched = scanned = 0
        while True:
            count = max(10, min(self.scan_count, self.keys_per_step - scanned))
            cursor, keys = client.scan(cursor, count)
            scanned += len(keys)
            for key in keys:
                for prefix, index in self._match:
                    if key.startswith(prefix):
                        counts[index] += 1
                        matched[index].append(key)
                        break
                else:
                    unmatched += 1
            if cursor == 0 or scanned >= self.keys_per_step:
                break
        memory_sum, memory_samples = self._sample(client, matched)
        end = cursor_position(cursor)
        step = _Step(
            position, max(end, position), started, counts, unmatched, memory_sum, memory_samples
        )
        with self._lock:
            if generation != self._restarts:
                return  # the census moved to another server meanwhile: this step is void
            if self._pass_started is None:
                self._pass_started = started
            self._keys_scanned += scanned
            self._current.append(step)
            if len(self._current) > MAX_STEPS_PER_PASS:
                self._current = _halve(self._current)
            self._cursor, self._position = cursor, step.end
            if cursor == 0:
                self._previous_foreign = False
                self._passes += 1
                self._last_pass_duration = self.clock() - self._pass_started
                self._previous, self._current = self._current, []
                self._pass_started, self._position = None, 0.0
            self._report = self._build_report()

    def _sample(
        self, client: CensusClient, matched: list[list[bytes]]
    ) -> tuple[list[float], list[int]]:
        """MEMORY USAGE of a few keys of each cache (stratified, so small caches get some)."""
        n = len(matched)
        memory_sum, memory_samples = [0.0] * n, [0] * n
        if not self._memory_allowed or n == 0:
            return memory_sum, memory_samples
        quota = max(1, self.samples_per_step // n)
        chosen: list[tuple[int, bytes]] = []
        # More caches than samples: the caches take turns, and the budget holds.
        visited = 0
        for turn in range(n):
            room = self.samples_per_step - len(chosen)
            if room <= 0:
                break
            index = (self._sample_offset + turn) % n
            keys = matched[index]
            take = min(quota, room)
            picked = keys if len(keys) <= take else self._random.sample(keys, take)
            chosen.extend((index, key) for key in picked)
            visited += 1
        self._sample_offset = (self._sample_offset + visited) % n
        if not chosen:
            return memory_sum, memory_samples
        try:
            sizes = client.memory_usage([key for _, key in chosen])
        except PermissionError:
            self._memory_allowed = False
            return memory_sum, memory_samples
        for (index, _), size in zip(chosen, sizes, strict=False):
            if size is not None:
                memory_sum[index] += size
                memory_samples[index] += 1
        return memory_sum, memory_samples

    def _window(
        self,
    ) -> tuple[list[float], float, list[float], list[int], float, float, float] | None:
        """Counts, unmatched, memory sums and samples, coverage (the share of the key space
        the window spans), the share of it seen on this server, and the oldest time."""
        steps = list(self._current)
        position = self._position
        weights = [1.0] * len(steps)
        if self._previous is not None:
            for step in self._previous:
                if step.end <= position:
                    continue
                width = step.end - step.start
                share = 1.0 if step.start >= position else (step.end - position) / width
                steps.append(step)
                weights.append(share)
            coverage = 1.0
        else:
            coverage = position
        seen = position if self._previous_foreign else coverage
        if not steps or coverage <= 0:
            return None
        n = len(self.caches)
        counts, memory_sum, memory_samples = [0.0] * n, [0.0] * n, [0] * n
        unmatched = 0.0
        for step, weight in zip(steps, weights, strict=True):
            for i in range(n):
                counts[i] += step.counts[i] * weight
                memory_sum[i] += step.memory_sum[i]
                memory_samples[i] += step.memory_samples[i]
            unmatched += step.unmatched * weight
        oldest = min(step.time for step in steps)
        return counts, unmatched, memory_sum, memory_samples, coverage, seen, oldest

    def _build_report(self) -> CensusReport:
        window = self._window()
        estimates: list[CacheEstimate] = []
        unmatched: float | None = None
        if window is not None:
            counts, unmatched, memory_sum, memory_samples, coverage, seen, oldest = window
            unmatched /= coverage
            for i, cache in enumerate(self.caches):
                size = counts[i] / coverage
                memory = None
                mean = self._mean_size[i]
                if memory_samples[i]:
                    mean = self._mean_size[i] = memory_sum[i] / memory_samples[i]
                    memory = size * mean
                elif counts[i] == 0 and self._memory_allowed:
                    memory = 0.0
                elif mean is not None and self._memory_allowed:
                    # No sample in this window (many caches take turns): the last known mean.
                    memory = size * mean
                ratio = min(1.0, memory_samples[i] / counts[i]) if counts[i] else 0.0
                estimates.append(
                    CacheEstimate(cache.name, size, memory, seen, oldest, memory_samples[i], ratio)
                )
        return CensusReport(
            tuple(estimates),
            self._position,
            self._passes,
            self._keys_scanned,
            unmatched,
            self._last_pass_duration,
            self._errors,
        )

    def report(self) -> CensusReport:
        with self._lock:
            return self._report


def census_loop(
    stop: threading.Event,
    step: Callable[[], None],
    failed: Callable[[Exception], None],
    interval: float,
) -> None:
    """The body of a census thread: a step every ``interval``; after a failure, back off
    (doubling, up to a minute) and carry on with the same cursor."""
    failures = 0
    delay = 0.0
    while not stop.wait(delay):
        try:
            step()
            failures = 0
            delay = interval
        except Exception as exc:  # noqa: BLE001 - the census must outlive Redis outages
            failures += 1
            failed(exc)
            delay = min(60.0, interval * 2 ** min(failures, 6))


def _halve(steps: list[_Step]) -> list[_Step]:
    merged = [steps[i].merge(steps[i + 1]) for i in range(0, len(steps) - 1, 2)]
    if len(steps) % 2:
        merged.append(steps[-1])
    return merged


def census_families(report: CensusReport, now: float | None = None) -> list[Metric]:
    """The census's own metrics: how fresh and how sampled each estimate is."""
    return [*_coverage(report), _age(report, now), *_progress(report)]


class CensusFamilies:
    """``census_families`` with what only a census step changes kept, frozen, between steps
    (every 5 s by default, against a scrape every 15 s or, under a benchmark, every few ms):
    only the estimates' age moves with the clock. A report compares by value; its figures
    are counts and shares of counts, never a negative zero."""

    def __init__(self) -> None:
        self._coverage = FamilyCache()
        self._progress = FamilyCache()

    def families(self, report: CensusReport, now: float | None = None) -> list[Metric]:
        return [
            *self._coverage.get(report, lambda: _coverage(report)),
            _age(report, now),
            *self._progress.get(report, lambda: _progress(report)),
        ]


def _coverage(report: CensusReport) -> list[Metric]:
    family = catalog.CENSUS_COVERAGE.family()
    for estimate in report.estimates:
        family.add_metric([estimate.name], estimate.coverage)
    return [family]


def _age(report: CensusReport, now: float | None) -> Metric:
    now = time.time() if now is None else now
    family: GaugeMetricFamily = catalog.CENSUS_AGE.family()
    for estimate in report.estimates:
        family.add_metric([estimate.name], max(0.0, now - estimate.oldest))
    return family


def _progress(report: CensusReport) -> list[Metric]:
    f: dict[str, Any] = catalog.families(
        [
            catalog.CENSUS_SAMPLED_KEYS, catalog.CENSUS_SAMPLE_RATIO, catalog.CENSUS_UNMATCHED,
            catalog.CENSUS_PROGRESS, catalog.CENSUS_PASSES, catalog.CENSUS_KEYS_SCANNED,
            catalog.CENSUS_LAST_PASS_DURATION, catalog.CENSUS_ERRORS,
        ]
    )  # fmt: skip
    for estimate in report.estimates:
        name = [estimate.name]
        f[catalog.CENSUS_SAMPLED_KEYS.name].add_metric(name, estimate.sampled_keys)
        f[catalog.CENSUS_SAMPLE_RATIO.name].add_metric(name, estimate.sample_ratio)
    if report.unmatched is not None:
        f[catalog.CENSUS_UNMATCHED.name].add_metric([], report.unmatched)
    f[catalog.CENSUS_PROGRESS.name].add_metric([], report.progress)
    f[catalog.CENSUS_PASSES.name].add_metric([], report.passes)
    f[catalog.CENSUS_KEYS_SCANNED.name].add_metric([], report.keys_scanned)
    if report.last_pass_duration is not None:
        f[catalog.CENSUS_LAST_PASS_DURATION.name].add_metric([], report.last_pass_duration)
    f[catalog.CENSUS_ERRORS.name].add_metric([], report.errors)
    return list(f.values())
