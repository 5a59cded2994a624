"""The mapping wrapper: ``instrument(cache, name)`` for a dict, a cachetools cache or any
other MutableMapping.

The hot path is one lookup in the wrapped cache plus one lock-free
counter bump; latency is timed on a sample of operations (every ``latency_sample_every``-th)
because timing and a histogram update cost ten times the lookup itself.

Tracing adds one check of ``tracing.spans.TRACING`` to each operation while it is off. While it
is on, an operation that ``spans.sample()`` picks takes a separate, fully timed path
that records a span and gives its latency observation the span's trace id (an exemplar).
A lookup inside a ``trace_cache_operation`` of the same cache takes that path too, and hands
its counts to the operation (``nesting``: one lookup counts once); while no operation is
open anywhere in the process, that costs one more module-flag check.

Every attribute read on the mapping itself goes through the ``__getattr__`` hook (CPython
3.11 does not specialise attribute access on such classes): about 300 instructions each,
ten times a module attribute. So the hot path reads each attribute at most once.
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
from typing import Any, Generic, TypeVar, cast

from ..tracing import spans as _tracing
from ..tracing.attributes import CACHE_HIT
from . import nesting as _nesting
from .memory import EntrySizeSampler
from .nesting import Claim, claim_on
from .recorder import CacheRecorder, Reading
from .table import CacheTable, default_table

K = TypeVar("K")
V = TypeVar("V")

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
        "_claims",
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
        self._claims = recorder.claims
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
        if _tracing.TRACING and _tracing.sample():
            value = self._slow_get(key, _MISSING, True, True, self._claim())
            if value is _MISSING:
                raise KeyError(key)
            return cast(V, value)
        if _nesting.OPEN and (claim := self._claim()) is not None:
            value = self._slow_get(key, _MISSING, True, False, claim)
            if value is _MISSING:
                raise KeyError(key)
            return cast(V, value)
        countdown = self._countdown
        if countdown > 0:
            self._countdown = countdown - 1
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
        if _tracing.TRACING and _tracing.sample():
            return self._slow_get(key, default, False, True, self._claim())
        if _nesting.OPEN and (claim := self._claim()) is not None:
            return self._slow_get(key, default, False, False, claim)
        countdown = self._countdown
        if countdown > 0:
            self._countdown = countdown - 1
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

    def _claim(self) -> Claim | None:
        return claim_on(self._recorder) if self._claims else None

    def _slow_get(
        self, key: K, default: Any, subscript: bool, traced: bool, claim: Claim | None
    ) -> Any:
        """A lookup that is recorded as a span (``traced``), or handed to the operation
        that ``claim``s this cache, or both; a traced lookup's latency carries the trace id
        as an exemplar. ``subscript`` looks up with ``[]`` so that ``__missing__`` runs."""
        name = self._recorder.name
        span = (
            _tracing.start_span("get " + name, _tracing.cache_attributes(name, "get", key))
            if traced
            else None
        )
        sink: CacheRecorder | Claim = self._recorder if claim is None else claim
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
            sink.error("get", exc)
            if span is not None:
                span.end(exc)
            raise
        elapsed = perf_counter() - start
        hit = value is not _MISSING
        if claim is None:
            next(self._hits if hit else self._misses)
            self._get_latency.observe(elapsed, None if span is None else span.trace_id)
        else:
            claim.count(hits=1) if hit else claim.count(misses=1)
        if span is not None:
            span.set(CACHE_HIT, hit)
            span.end()
        return value if hit else default

    def _slow_write(
        self, operation: str, key: K, write: Callable[[], None], traced: bool, claim: Claim | None
    ) -> None:
        """A put or remove recorded as a span, or handed to the operation that ``claim``s
        this cache, or both (counted by the caller when it succeeds)."""
        name = self._recorder.name
        span = (
            _tracing.start_span(
                f"{operation} {name}", _tracing.cache_attributes(name, operation, key)
            )
            if traced
            else None
        )
        sink: CacheRecorder | Claim = self._recorder if claim is None else claim
        start = perf_counter()
        try:
            write()
        except Exception as exc:
            if not isinstance(exc, KeyError):
                sink.error(operation, exc)
            if span is not None:
                span.end(exc)
            raise
        elapsed = perf_counter() - start
        if claim is None:
            latency = self._put_latency if operation == "put" else self._recorder.latency(operation)
            latency.observe(elapsed, None if span is None else span.trace_id)
        if span is not None:
            span.end()

    def setdefault(self, key: K, default: Any = None) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            self[key] = default
            return default
        return value

    # --- writes and deletes -----------------------------------------------------------------
    def __setitem__(self, key: K, value: V) -> None:
        traced = _tracing.TRACING and _tracing.sample()
        if traced or _nesting.OPEN:
            claim = self._claim()
            if traced or claim is not None:
                cache = self._cache

                def write() -> None:
                    cache[key] = value

                self._slow_write("put", key, write, traced, claim)
                (self._recorder if claim is None else claim).count(puts=1)
                return
        countdown = self._put_countdown
        if countdown > 0:
            self._put_countdown = countdown - 1
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
        traced = _tracing.TRACING and _tracing.sample()
        claim = self._claim() if _nesting.OPEN else None
        if traced or claim is not None:
            cache = self._cache

            def remove() -> None:
                del cache[key]

            self._slow_write("remove", key, remove, traced, claim)
            (self._recorder if claim is None else claim).count(removals=1)
            return
        del self._cache[key]
        next(self._removals)

    def pop(self, key: K, default: Any = _MISSING) -> Any:
        try:
            value = self._cache.pop(key)
        except KeyError:
            if default is _MISSING:
                raise
            return default
        self._recorder.remove()
        return value

    def popitem(self) -> tuple[K, V]:
        item: tuple[K, V] = self._raw_popitem()
        self._recorder.remove()
        return item

    def clear(self) -> None:
        removed = len(self._cache)
        self._cache.clear()
        self._recorder.count(removals=removed)

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
    registry: CacheTable | None = None,
) -> InstrumentedMapping[K, V]:
    """Wrap ``cache`` (a dict, a cachetools cache, any MutableMapping) as logical cache ``name``.

    Use the returned mapping in place of the original. Several mappings may share a name;
    their entries and memory add up.
    """
    if not isinstance(cache, MutableMapping):
        raise TypeError(f"instrument() needs a MutableMapping, not {type(cache).__name__}")
    if isinstance(cache, InstrumentedMapping):
        cache = cache.wrapped
    recorder = (registry or default_table()).recorder(name)
    wrapped = InstrumentedMapping(cache, recorder, latency_sample_every)
    recorder.add_weak_provider(
        wrapped, lambda mapping: mapping._reading(max_entries, memory_limit_bytes)
    )
    return wrapped
