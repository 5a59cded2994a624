"""Per-cache statistics kept where they cost least, read into snapshots at collection time.

Hot paths bump ``itertools.count`` objects: one C call, atomic under the GIL, about 40 ns,
with no lock and no label lookup. Collection reads them back and builds snapshots, the way
Micrometer's function counters read a cache's own statistics.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .. import catalog
from ..catalog import OTHER
from ..snapshot import CacheSnapshot, Exemplar, HistogramSnapshot
from .nesting import Claim, claim_on

MAX_OPERATIONS_PER_CACHE = 32
MAX_ERROR_KINDS_PER_CACHE = 64


def read_count(counter: itertools.count[int]) -> int:
    """The current value of an ``itertools.count()`` without advancing it.

    ``repr`` is the only non-deprecated way to read it: ``count(N)`` for a counter started
    at 0 with step 1, which is how every counter here is made.
    """
    text = repr(counter)
    return int(text[6:-1])


class Tally:
    """A monotonic counter: ``inc()`` is lock-free; ``add(n)`` takes a lock (rare paths)."""

    __slots__ = ("_extra", "_lock", "counter")

    def __init__(self) -> None:
        self.counter: itertools.count[int] = itertools.count()
        self._extra = 0
        self._lock = threading.Lock()

    def inc(self) -> None:
        next(self.counter)

    def add(self, amount: int) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        if amount == 1:
            next(self.counter)
            return
        with self._lock:
            self._extra += amount

    @property
    def value(self) -> int:
        return read_count(self.counter) + self._extra

    def after_fork(self) -> None:
        """In a forked child: a lock another thread of the parent held stays held forever."""
        self._lock._at_fork_reinit()  # type: ignore[attr-defined]


class LatencyHistogram:
    """Fixed-bucket histogram with one exemplar per bucket (the latest traced observation)."""

    __slots__ = ("_bounds", "_counts", "_exemplars", "_lock", "_sum")

    def __init__(self, bounds: tuple[float, ...] = catalog.LATENCY_BUCKETS) -> None:
        self._bounds = bounds
        self._counts = [0] * (len(bounds) + 1)
        self._sum = 0.0
        self._exemplars: dict[int, tuple[str | int, float, float]] = {}
        """Per bucket, the latest traced observation as a plain tuple: a frozen dataclass
        costs about 0.6 µs to make, a tenth of a sampled lookup; ``snapshot`` builds it (and
        formats a trace id given as an int)."""
        self._lock = threading.Lock()

    def observe(
        self, seconds: float, trace_id: str | int | None = None, timestamp: float | None = None
    ) -> None:
        """Count one observation; with a ``trace_id`` (hex, or the int a span gives), keep it
        as its bucket's exemplar, stamped ``timestamp`` (default: now; a caller that has
        just read the clock passes it). The lock is taken by ``acquire``/``release``, not
        ``with``: about half the instructions, on every traced lookup."""
        index = bisect.bisect_left(self._bounds, seconds)
        lock = self._lock
        lock.acquire()
        try:
            self._counts[index] += 1
            self._sum += seconds
            if trace_id is not None:
                self._exemplars[index] = (
                    trace_id,
                    seconds,
                    time.time() if timestamp is None else timestamp,
                )
        finally:
            lock.release()

    def after_fork(self) -> None:
        self._lock._at_fork_reinit()  # type: ignore[attr-defined]

    def snapshot(self) -> HistogramSnapshot:
        with self._lock:
            counts = list(self._counts)
            total = self._sum
            exemplars = dict(self._exemplars)
        cumulative: list[tuple[float, int]] = []
        running = 0
        for bound, count in zip((*self._bounds, float("inf")), counts, strict=True):
            running += count
            cumulative.append((bound, running))
        bounds = (*self._bounds, float("inf"))
        return HistogramSnapshot(
            buckets=tuple(cumulative),
            sum=total,
            count=running,
            exemplars={
                bounds[i]: Exemplar(
                    trace_id if isinstance(trace_id, str) else format(trace_id, "032x"),
                    value,
                    at,
                )
                for i, (trace_id, value, at) in exemplars.items()
            },
        )


@dataclass
class Reading:
    """What a live cache object reports about itself at collection time (absolute values)."""

    size: int | None = None
    memory_bytes: float | None = None
    max_entries: int | None = None
    memory_limit_bytes: float | None = None
    hits: int = 0
    misses: int = 0
    puts: int = 0
    evictions: int = 0


ReadingProvider = Callable[[], Reading | None]
"""Returns the reading of one live cache object, or None once that object is gone."""


@dataclass
class _Labelled:
    """Tallies keyed by a small label set, capped so that label values stay bounded."""

    limit: int
    tallies: dict[Any, Tally] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: Any, overflow: Any) -> Tally:
        tally = self.tallies.get(key)
        if tally is None:
            with self.lock:
                tally = self.tallies.get(key)
                if tally is None:
                    if len(self.tallies) >= self.limit:
                        key = overflow
                    tally = self.tallies.setdefault(key, Tally())
        return tally

    def values(self) -> dict[Any, int]:
        return {key: tally.value for key, tally in list(self.tallies.items())}

    def after_fork(self) -> None:
        self.lock._at_fork_reinit()  # type: ignore[attr-defined]
        for tally in list(self.tallies.values()):
            tally.after_fork()


class CacheRecorder:
    """The statistics of one logical cache, and the recorder API for caches of any kind.

    ``cachewatch.cache_metrics(name)`` returns one; ``instrument()`` and ``watch_lru()``
    feed one. Every method is safe to call from many threads. Inside an open
    ``trace_cache_operation`` of this cache, what is recorded is handed to that operation,
    so that one lookup counts once (``nesting``).
    """

    def __init__(self, name: str, source: str = "local") -> None:
        self.name = name
        self.source = source
        self.hits = Tally()
        self.misses = Tally()
        self.puts = Tally()
        self.removals = Tally()
        self.evictions = Tally()
        self.expirations = Tally()
        self.cleanup_removed = Tally()
        self._errors = _Labelled(MAX_ERROR_KINDS_PER_CACHE)
        self._cleanups = _Labelled(MAX_OPERATIONS_PER_CACHE)
        self._latency: dict[str, LatencyHistogram] = {}
        self._latency_lock = threading.Lock()
        self._cleanup_duration = LatencyHistogram(catalog.CLEANUP_BUCKETS)
        self._last_cleanup: float | None = None
        self._size: int | None = None
        self._memory: float | None = None
        self.max_entries: int | None = None
        self.memory_limit_bytes: float | None = None
        self._providers: list[ReadingProvider] = []
        self._providers_lock = threading.Lock()
        self.claims: list[Claim] = []
        """The operations open on this cache, in any context (see ``nesting``)."""
        self.counts_lookups_itself = False
        """True when a provider reports this cache's lookups (``watch_lru``)."""

    # --- the recorder API -------------------------------------------------------------------
    def hit(self) -> None:
        if self.claims and self._hand_over(hits=1):
            return
        next(self.hits.counter)

    def miss(self) -> None:
        if self.claims and self._hand_over(misses=1):
            return
        next(self.misses.counter)

    def put(self) -> None:
        if self.claims and self._hand_over(puts=1):
            return
        next(self.puts.counter)

    def remove(self) -> None:
        if self.claims and self._hand_over(removals=1):
            return
        next(self.removals.counter)

    def count(self, *, hits: int = 0, misses: int = 0, puts: int = 0, removals: int = 0) -> None:
        """Count several outcomes at once (a multi-key command's reply)."""
        if self.claims and self._hand_over(hits=hits, misses=misses, puts=puts, removals=removals):
            return
        for tally, amount in (
            (self.hits, hits), (self.misses, misses), (self.puts, puts), (self.removals, removals)
        ):  # fmt: skip
            if amount:
                tally.add(amount)

    def _hand_over(self, **counts: int) -> bool:
        """Give the counts to the operation open on this cache in this context, if any."""
        claim = claim_on(self)
        if claim is None:
            return False
        claim.count(**counts)
        return True

    def evict(self, n: int = 1) -> None:
        self.evictions.add(n)

    def expire(self, n: int = 1) -> None:
        self.expirations.add(n)

    def error(self, operation: str, exc: BaseException | type[BaseException] | str) -> None:
        """Count a failed operation under the exception's class name."""
        if self.claims and (claim := claim_on(self)) is not None:
            claim.error(operation, exc)
            return
        if isinstance(exc, str):
            kind = exc
        elif isinstance(exc, type):
            kind = exc.__name__
        else:
            kind = type(exc).__name__
        self._errors.get((operation, kind), (operation, OTHER)).inc()

    def set_size(self, n: int) -> None:
        self._size = int(n)

    def set_memory(self, nbytes: float) -> None:
        self._memory = float(nbytes)

    def set_limits(
        self, *, max_entries: int | None = None, memory_limit_bytes: float | None = None
    ) -> None:
        if max_entries is not None:
            self.max_entries = int(max_entries)
        if memory_limit_bytes is not None:
            self.memory_limit_bytes = float(memory_limit_bytes)

    def cleanup(self, removed: int, duration_seconds: float, trigger: str = "scheduled") -> None:
        """Record one cleanup run: what triggered it, what it removed and how long it took."""
        self._cleanups.get(trigger, OTHER).inc()
        self.cleanup_removed.add(int(removed))
        self._cleanup_duration.observe(float(duration_seconds))
        self._last_cleanup = time.time()

    def latency(self, operation: str) -> LatencyHistogram:
        """The latency histogram of one operation (created on first use, bounded in number)."""
        histogram = self._latency.get(operation)
        if histogram is None:
            with self._latency_lock:
                histogram = self._latency.get(operation)
                if histogram is None:
                    if len(self._latency) >= MAX_OPERATIONS_PER_CACHE:
                        operation = OTHER
                    histogram = self._latency.setdefault(operation, LatencyHistogram())
        return histogram

    def observe(self, operation: str, seconds: float, trace_id: str | None = None) -> None:
        if self.claims and (claim := claim_on(self)) is not None:
            claim.observe(operation, seconds, trace_id)
            return
        self.latency(operation).observe(seconds, trace_id)

    @contextmanager
    def time(self, operation: str) -> Iterator[None]:
        """Time the block as one ``operation``; an exception is counted as an error."""
        start = time.perf_counter()
        try:
            yield
        except BaseException as exc:
            self.error(operation, exc)
            raise
        finally:
            self.observe(operation, time.perf_counter() - start)

    # --- live readings ----------------------------------------------------------------------
    def add_provider(self, provider: ReadingProvider) -> None:
        with self._providers_lock:
            self._providers.append(provider)

    def add_weak_provider(self, owner: object, read: Callable[[Any], Reading]) -> None:
        """Read ``owner`` at collection time for as long as it lives."""
        ref = weakref.ref(owner)

        def provider() -> Reading | None:
            target = ref()
            return None if target is None else read(target)

        self.add_provider(provider)

    def _readings(self) -> list[Reading]:
        readings: list[Reading] = []
        with self._providers_lock:
            alive: list[ReadingProvider] = []
            for provider in self._providers:
                reading = provider()
                if reading is not None:
                    alive.append(provider)
                    readings.append(reading)
            self._providers = alive
        return readings

    def after_fork(self) -> None:
        """In a forked child, make every lock free again: a thread of the parent may have held
        one at the fork, and that thread does not exist here to release it."""
        for lock in (self._latency_lock, self._providers_lock):
            lock._at_fork_reinit()  # type: ignore[attr-defined]
        for tally in (self.hits, self.misses, self.puts, self.removals, self.evictions,
                      self.expirations, self.cleanup_removed):  # fmt: skip
            tally.after_fork()
        self._errors.after_fork()
        self._cleanups.after_fork()
        self._cleanup_duration.after_fork()
        for histogram in list(self._latency.values()):
            histogram.after_fork()

    # --- collection -------------------------------------------------------------------------
    def snapshot(self) -> CacheSnapshot:
        readings = self._readings()
        size = self._size
        memory = self._memory
        max_entries = self.max_entries
        memory_limit = self.memory_limit_bytes
        hits, misses, evictions = self.hits.value, self.misses.value, self.evictions.value
        puts = self.puts.value
        for reading in readings:
            hits += reading.hits
            misses += reading.misses
            puts += reading.puts
            evictions += reading.evictions
            if reading.size is not None:
                size = (size or 0) + reading.size
            if reading.memory_bytes is not None:
                memory = (memory or 0.0) + reading.memory_bytes
            if reading.max_entries is not None:
                max_entries = (max_entries or 0) + reading.max_entries
            if reading.memory_limit_bytes is not None:
                memory_limit = (memory_limit or 0.0) + reading.memory_limit_bytes
        with self._latency_lock:
            latency = dict(self._latency)
        cleanup_duration = self._cleanup_duration.snapshot()
        return CacheSnapshot(
            name=self.name,
            source=self.source,
            hits=hits,
            misses=misses,
            puts=puts,
            removals=self.removals.value,
            evictions=evictions,
            expirations=self.expirations.value,
            size=size,
            memory_bytes=memory,
            memory_limit_bytes=memory_limit,
            max_entries=max_entries,
            errors=self._errors.values(),
            cleanups=self._cleanups.values(),
            cleanup_removed=self.cleanup_removed.value,
            cleanup_duration=cleanup_duration if cleanup_duration.count else None,
            last_cleanup_timestamp=self._last_cleanup,
            latency={op: h.snapshot() for op, h in latency.items()},
        )
