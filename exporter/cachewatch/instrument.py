"""In-process cache instrumentation: a mapping wrapper, an lru_cache watcher, a recorder
for any other cache, and a context manager for single operations.

The mapping wrapper's hot path is one lookup in the wrapped cache plus one lock-free
counter bump; latency is timed on a sample of operations (every ``latency_sample_every``-th)
because timing and a histogram update cost ten times the lookup itself.

Tracing adds one check of ``telemetry.TRACING`` to each operation while it is off. While it
is on, an operation that ``telemetry.sample()`` picks takes a separate, fully timed path
that records a span and gives its latency observation the span's trace id (an exemplar).
"""

from __future__ import annotations

from collections.abc import (
    Callable,
    ItemsView,
    Iterator,
    KeysView,
    Mapping,
    MutableMapping,
    ValuesView,
)
from time import perf_counter
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

from . import telemetry as _telemetry
from .memory import EntrySizeSampler
from .recorder import CacheRecorder, Reading
from .registry import CacheRegistry, default_registry

K = TypeVar("K")
V = TypeVar("V")
F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_LATENCY_SAMPLE_EVERY = 64
SIZE_SAMPLE_EVERY = 16
_MISSING: Any = object()
_HOOKED = "_cachewatch_hooked"


def _cachetools_base(cache: object) -> type | None:
    """cachetools' ``Cache`` base class when ``cache`` is one of its caches, else None."""
    for klass in type(cache).__mro__:
        if klass.__name__ == "Cache" and klass.__module__.startswith("cachetools"):
            return klass
    return None


def _hook_cachetools(cache: Any, recorder: CacheRecorder) -> None:
    """Count cachetools' own removals: capacity evictions go through ``popitem`` and TTL
    expirations through ``expire``, both called as ``self.<method>()`` by the cache itself,
    so instance attributes of the same names see every one of them."""
    if getattr(cache, _HOOKED, False):
        return
    raw_popitem = cache.popitem
    evictions = recorder.evictions.counter

    def popitem() -> tuple[Any, Any]:
        item: tuple[Any, Any] = raw_popitem()
        next(evictions)
        return item

    cache.popitem = popitem
    raw_expire = getattr(cache, "expire", None)
    if callable(raw_expire):

        def expire(time: Any = None) -> Any:
            expired = raw_expire(time)
            if expired:
                recorder.expire(len(expired))
            return expired

        cache.expire = expire
    setattr(cache, _HOOKED, raw_popitem)


class InstrumentedMapping(MutableMapping[K, V], Generic[K, V]):
    """A mapping that behaves like the cache it wraps while counting what happens to it.

    Lookups (``[]``, ``get``, ``setdefault``) count hits and misses; a stored ``None``,
    ``0`` or ``""`` is a hit. Writes count puts, deletes count removals; for cachetools
    caches, capacity evictions and TTL expirations are counted as such. ``in`` is not a
    lookup. Unknown attributes (``maxsize``, ``ttl``, ...) are read from the wrapped cache.
    """

    __slots__ = (
        "__weakref__",
        "_cache",
        "_countdown",
        "_get",
        "_get_latency",
        "_hits",
        "_misses",
        "_put_countdown",
        "_put_latency",
        "_puts",
        "_raw_popitem",
        "_recorder",
        "_removals",
        "_sample_every",
        "_sizes",
    )

    def __init__(
        self,
        cache: MutableMapping[K, V],
        recorder: CacheRecorder,
        latency_sample_every: int = DEFAULT_LATENCY_SAMPLE_EVERY,
    ) -> None:
        if latency_sample_every < 1:
            raise ValueError("latency_sample_every must be at least 1")
        self._cache = cache
        self._recorder = recorder
        self._get = cache.get
        self._hits = recorder.hits.counter
        self._misses = recorder.misses.counter
        self._puts = recorder.puts.counter
        self._removals = recorder.removals.counter
        self._get_latency = recorder.latency("get")
        self._put_latency = recorder.latency("put")
        self._sample_every = latency_sample_every
        self._countdown = 0
        self._put_countdown = 0
        self._sizes = EntrySizeSampler()
        base = _cachetools_base(cache)
        self._raw_popitem = cache.popitem
        if base is not None:
            _hook_cachetools(cache, recorder)
            self._raw_popitem = getattr(cache, _HOOKED)

    # --- lookups ----------------------------------------------------------------------------
    def __getitem__(self, key: K) -> V:
        if _telemetry.TRACING and _telemetry.sample():
            value = self._traced_get(key, _MISSING, subscript=True)
            if value is _MISSING:
                raise KeyError(key)
            return cast(V, value)
        if self._countdown > 0:
            self._countdown -= 1
            try:
                value = self._cache[key]
            except KeyError:
                next(self._misses)
                raise
            except Exception as exc:
                self._recorder.error("get", exc)
                raise
        else:
            self._countdown = self._sample_every - 1
            start = perf_counter()
            try:
                value = self._cache[key]
            except KeyError:
                self._get_latency.observe(perf_counter() - start)
                next(self._misses)
                raise
            except Exception as exc:
                self._recorder.error("get", exc)
                raise
            self._get_latency.observe(perf_counter() - start)
        next(self._hits)
        return value

    def get(self, key: K, default: Any = None) -> Any:
        if _telemetry.TRACING and _telemetry.sample():
            return self._traced_get(key, default)
        if self._countdown > 0:
            self._countdown -= 1
            try:
                value = self._get(key, _MISSING)
            except Exception as exc:
                self._recorder.error("get", exc)
                raise
        else:
            self._countdown = self._sample_every - 1
            start = perf_counter()
            try:
                value = self._get(key, _MISSING)
            except Exception as exc:
                self._recorder.error("get", exc)
                raise
            self._get_latency.observe(perf_counter() - start)
        if value is _MISSING:
            next(self._misses)
            return default
        next(self._hits)
        return value

    def _traced_get(self, key: K, default: Any, subscript: bool = False) -> Any:
        """A lookup recorded as a span; its latency carries the trace id as an exemplar.
        ``subscript`` looks up with ``[]`` so that a cache's ``__missing__`` still runs."""
        span = _telemetry.start_span(
            "get " + self._recorder.name,
            _telemetry.cache_attributes(self._recorder.name, "get", key),
        )
        start = perf_counter()
        try:
            if subscript:
                try:
                    value = self._cache[key]
                except KeyError:
                    value = _MISSING
            else:
                value = self._get(key, _MISSING)
        except Exception as exc:
            self._recorder.error("get", exc)
            if span is not None:
                span.end(exc)
            raise
        elapsed = perf_counter() - start
        hit = value is not _MISSING
        next(self._hits if hit else self._misses)
        if span is None:
            self._get_latency.observe(elapsed)
        else:
            self._get_latency.observe(elapsed, span.trace_id)
            span.set(_telemetry.CACHE_HIT, hit)
            span.end()
        return value if hit else default

    def _traced_write(self, operation: str, key: K, write: Callable[[], None]) -> None:
        """A put or remove recorded as a span (counted by the caller when it succeeds)."""
        name = self._recorder.name
        span = _telemetry.start_span(
            f"{operation} {name}", _telemetry.cache_attributes(name, operation, key)
        )
        start = perf_counter()
        try:
            write()
        except Exception as exc:
            if not isinstance(exc, KeyError):
                self._recorder.error(operation, exc)
            if span is not None:
                span.end(exc)
            raise
        elapsed = perf_counter() - start
        latency = self._put_latency if operation == "put" else self._recorder.latency(operation)
        if span is None:
            latency.observe(elapsed)
        else:
            latency.observe(elapsed, span.trace_id)
            span.end()

    def setdefault(self, key: K, default: Any = None) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            self[key] = default
            return default
        return value

    # --- writes and deletes -----------------------------------------------------------------
    def __setitem__(self, key: K, value: V) -> None:
        if _telemetry.TRACING and _telemetry.sample():
            cache = self._cache

            def write() -> None:
                cache[key] = value

            self._traced_write("put", key, write)
            next(self._puts)
            return
        if self._put_countdown > 0:
            self._put_countdown -= 1
            try:
                self._cache[key] = value
            except Exception as exc:
                self._recorder.error("put", exc)
                raise
        else:
            self._put_countdown = min(self._sample_every, SIZE_SAMPLE_EVERY) - 1
            self._sizes.observe(key, value)
            start = perf_counter()
            try:
                self._cache[key] = value
            except Exception as exc:
                self._recorder.error("put", exc)
                raise
            self._put_latency.observe(perf_counter() - start)
        next(self._puts)

    def __delitem__(self, key: K) -> None:
        if _telemetry.TRACING and _telemetry.sample():
            cache = self._cache

            def remove() -> None:
                del cache[key]

            self._traced_write("remove", key, remove)
        else:
            del self._cache[key]
        next(self._removals)

    def pop(self, key: K, default: Any = _MISSING) -> Any:
        try:
            value = self._cache.pop(key)
        except KeyError:
            if default is _MISSING:
                raise
            return default
        next(self._removals)
        return value

    def popitem(self) -> tuple[K, V]:
        item: tuple[K, V] = self._raw_popitem()
        next(self._removals)
        return item

    def clear(self) -> None:
        removed = len(self._cache)
        self._cache.clear()
        self._recorder.removals.add(removed)

    # --- pass-through -----------------------------------------------------------------------
    def __contains__(self, key: object) -> bool:
        return key in self._cache

    def __iter__(self) -> Iterator[K]:
        return iter(self._cache)

    def __len__(self) -> int:
        return len(self._cache)

    def keys(self) -> KeysView[K]:
        return self._cache.keys()

    def values(self) -> ValuesView[V]:
        return self._cache.values()

    def items(self) -> ItemsView[K, V]:
        return self._cache.items()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, InstrumentedMapping):
            other = other._cache
        return bool(self._cache == other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._cache)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cache, name)

    @property
    def wrapped(self) -> MutableMapping[K, V]:
        """The original cache."""
        return self._cache

    @property
    def recorder(self) -> CacheRecorder:
        return self._recorder

    # --- collection-time reading ------------------------------------------------------------
    def _reading(self, max_entries: int | None, memory_limit_bytes: float | None) -> Reading:
        cache = self._cache
        entries = len(cache)
        mean = self._sizes.mean()
        if mean is None and entries:
            self._sizes.seed_from(cast(Mapping[object, object], cache), self._peek())
            mean = self._sizes.mean()
        memory = entries * mean if mean is not None else 0.0
        if max_entries is None:
            max_entries = self._implied_max_entries()
        return Reading(
            size=entries,
            memory_bytes=memory,
            max_entries=max_entries,
            memory_limit_bytes=memory_limit_bytes,
        )

    def _peek(self) -> Callable[[object], object]:
        """Read an entry without a lookup's side effects (cachetools reorders on lookup)."""
        cache: Any = self._cache
        base = _cachetools_base(cache)
        if base is not None:
            raw_getitem: Callable[[Any, object], object] = getattr(base, "__getitem__")  # noqa: B009
            return lambda key: raw_getitem(cache, key)
        getitem: Callable[[object], object] = cache.__getitem__
        return getitem

    def _implied_max_entries(self) -> int | None:
        """cachetools' ``maxsize`` counts entries unless the cache weighs them itself."""
        cache = self._cache
        if _cachetools_base(cache) is None or "getsizeof" in vars(cache):
            return None
        maxsize = getattr(cache, "maxsize", None)
        return int(maxsize) if isinstance(maxsize, (int, float)) else None


def instrument(
    cache: MutableMapping[K, V],
    name: str,
    *,
    max_entries: int | None = None,
    memory_limit_bytes: float | None = None,
    latency_sample_every: int = DEFAULT_LATENCY_SAMPLE_EVERY,
    registry: CacheRegistry | None = None,
) -> InstrumentedMapping[K, V]:
    """Wrap ``cache`` (a dict, a cachetools cache, any MutableMapping) as logical cache ``name``.

    Use the returned mapping in place of the original. Several mappings may share a name;
    their entries and memory add up.
    """
    if not isinstance(cache, MutableMapping):
        raise TypeError(f"instrument() needs a MutableMapping, not {type(cache).__name__}")
    if isinstance(cache, InstrumentedMapping):
        cache = cache.wrapped
    recorder = (registry or default_registry()).recorder(name)
    wrapped = InstrumentedMapping(cache, recorder, latency_sample_every)
    recorder.add_weak_provider(
        wrapped, lambda mapping: mapping._reading(max_entries, memory_limit_bytes)
    )
    return wrapped


def watch_lru(func: F, name: str, *, registry: CacheRegistry | None = None) -> F:
    """Publish a ``functools.lru_cache``/``functools.cache`` function's statistics as ``name``.

    Everything is read from ``cache_info()`` at collection time, so calls cost nothing
    extra. Puts and evictions are derived (every miss stores its result; misses that did not
    stay as entries were evicted), which assumes the function did not raise. Returns
    ``func`` unchanged, so it works as a decorator helper.
    """
    if not callable(getattr(func, "cache_info", None)):
        raise TypeError("watch_lru() needs a function wrapped by functools.lru_cache or cache")
    recorder = (registry or default_registry()).recorder(name)

    def read(target: Any) -> Reading:
        info = target.cache_info()
        evictions = max(0, info.misses - info.currsize) if info.maxsize is not None else 0
        return Reading(
            size=info.currsize,
            max_entries=info.maxsize,
            hits=info.hits,
            misses=info.misses,
            puts=info.misses,
            evictions=evictions,
        )

    recorder.add_weak_provider(func, read)
    return func


def cache_metrics(
    name: str,
    *,
    max_entries: int | None = None,
    memory_limit_bytes: float | None = None,
    registry: CacheRegistry | None = None,
) -> CacheRecorder:
    """A recorder for a cache of any other kind: call its ``hit()``, ``miss()``, ``put()``..."""
    recorder = (registry or default_registry()).recorder(name)
    recorder.set_limits(max_entries=max_entries, memory_limit_bytes=memory_limit_bytes)
    return recorder


GET_OPERATIONS = frozenset({"get", "read", "lookup", "fetch"})
PUT_OPERATIONS = frozenset({"put", "set", "write", "store"})
REMOVE_OPERATIONS = frozenset({"remove", "delete", "del", "invalidate"})


class CacheOperation:
    """One timed cache operation; say how a lookup went with ``hit()``, ``miss()`` or
    ``result(value)`` (``None`` is a miss).

    When tracing is on and the operation is sampled it is also a span, active for the
    block's duration, so that a Redis call made inside becomes its child; its latency
    carries the span's trace id as an exemplar.
    """

    __slots__ = ("_outcome", "_span", "_start", "cache", "key", "operation", "recorder")

    def __init__(self, operation: str, recorder: CacheRecorder, key: object = None) -> None:
        self.operation = operation
        self.recorder = recorder
        self.cache = recorder.name
        self.key = key
        self._outcome: bool | None = None
        self._start = 0.0
        self._span: _telemetry.Span | None = None

    def hit(self) -> None:
        self._outcome = True

    def miss(self) -> None:
        self._outcome = False

    def result(self, value: object) -> object:
        self._outcome = value is not None
        return value

    @property
    def trace_id(self) -> str | None:
        """The trace id of this operation's span, when it is recorded."""
        return None if self._span is None else self._span.trace_id

    def __enter__(self) -> CacheOperation:
        if _telemetry.TRACING and _telemetry.sample():
            self._span = _telemetry.start_span(
                f"{self.operation} {self.cache}",
                _telemetry.cache_attributes(self.cache, self.operation, self.key),
                current=True,
            )
        self._start = perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        elapsed = perf_counter() - self._start
        recorder = self.recorder
        span = self._span
        if span is None:
            recorder.observe(self.operation, elapsed)
        else:
            recorder.observe(self.operation, elapsed, span.trace_id)
            if self._outcome is not None:
                span.set(_telemetry.CACHE_HIT, self._outcome)
            self._span = None
            span.end(exc)
        if exc is not None:
            recorder.error(self.operation, exc)
            return
        if self._outcome is True:
            recorder.hit()
        elif self._outcome is False:
            recorder.miss()
        elif self.operation in PUT_OPERATIONS:
            recorder.put()
        elif self.operation in REMOVE_OPERATIONS:
            recorder.remove()


def trace_cache_operation(
    operation: str, cache: str, key: object = None, *, registry: CacheRegistry | None = None
) -> CacheOperation:
    """Time one operation on logical cache ``cache`` and record its outcome.

    ``with trace_cache_operation("get", "search_cache", key) as op: op.result(redis.get(key))``
    counts a hit or a miss, observes the latency and counts an exception as an error (and
    re-raises it). Writes (``put``/``set``) and deletes (``remove``/``delete``) are counted
    when the block succeeds.
    """
    return CacheOperation(operation, (registry or default_registry()).recorder(cache), key)
