"""The mapping wrapper: ``instrument(cache, name)`` for a dict, a cachetools cache or any
other MutableMapping.

A hit is one lookup in the wrapped cache, one check of ``gate.WATCH`` and one lock-free
counter bump. Lookups are not timed unless asked for (``latency_sample_every``): a dict
lookup takes less time than the two clock reads that would time it, and Micrometer does not
time in-process cache gets either. Remote caches (``trace_cache_operation``,
``instrument_redis``) are always timed.

``WATCH`` is non-empty while tracing is on or an operation is open anywhere in the process.
Then a root lookup (no operation open, no span active: one C call tells) counts down to its
turn to be recorded as a span (``_turns``, another C call) and otherwise counts as on the
hot path; any other lookup takes ``_decided_get``, which asks whether it is sampled and
whether it belongs to an open ``trace_cache_operation`` of the same cache (``nesting``: one
lookup counts once). A span is recorded after the fact: nothing runs inside an in-process
lookup, so it never needs to be the active one.

The wrapper has no ``__getattr__``: CPython 3.11 specialises no attribute access on a class
that has one, which made every ``self._...`` read on the hot path several times dearer
(bench/instrument.py: a hit cost 186 ns with it, against a bare ``dict.get`` of 17 ns).
Attributes of the wrapped cache (``maxsize``, ``ttl``, ...) are forwarded by properties of
a subclass made once per wrapped type and attribute set (``_forwarding_class``).

The counting lines of ``get``, ``__getitem__`` and ``_plain_get`` repeat one another on
purpose: a Python call costs more than the lookup they count.
"""

from __future__ import annotations

import itertools
from collections.abc import (
    Callable,
    ItemsView,
    Iterator,
    KeysView,
    Mapping,
    MutableMapping,
    ValuesView,
)
from threading import Lock
from time import perf_counter, perf_counter_ns, time_ns
from typing import Any, Generic, TypeVar, cast

from ..tracing import spans as _tracing
from ..tracing.attributes import CACHE_HIT, CACHE_NAME, CACHE_OPERATION
from . import nesting as _nesting
from .gate import WATCH
from .memory import EntrySizeSampler
from .nesting import OPEN, Claim, claim_on
from .recorder import CacheRecorder, Reading
from .table import CacheTable, default_table

K = TypeVar("K")
V = TypeVar("V")

SIZE_SAMPLE_EVERY = 16
_MISSING: Any = object()
_HOOKED = "_cachewatch_hooked"


# --- root lookups while tracing is on ----------------------------------------------------------
# A lookup with no active span is a root, recorded with probability ``ratio``. Instead of a
# draw per lookup (a call into the decision), root lookups count down to the next recorded
# one, the count drawn from the same geometric distribution once per recorded lookup
# (``spans.root_sampling``). ``_context() is _EMPTY`` tells a root in one C call; the count
# is an iterator of that many ``False`` and then one ``True``: ``next(_turns, False)`` is
# one C call too, and hands the ``True`` to exactly one lookup however many threads count
# (a lock or a decremented global int would cost more and the latter is not atomic).
_NOT_A_CONTEXT = object()
_NEVER: Iterator[bool] = itertools.repeat(False)
_ALWAYS: Iterator[bool] = itertools.repeat(True)
"""Every root lookup recorded: no countdown to draw (it costs 2% of a span to make one)."""
_TURN = (True,)


def _no_context() -> object:
    return None


def _no_gap() -> int:
    return 0


_context: Callable[[], object] = _no_context
"""Reads OpenTelemetry's current context (a ContextVar's ``get``) while tracing is on."""
_EMPTY: object = _NOT_A_CONTEXT
"""The context of a thread or task where none was attached: no span is active there.
Nothing ``_context`` returns is ``_NOT_A_CONTEXT``: while tracing is off, or while it
toggles, every lookup takes the full decision."""
_next_gap: Callable[[], int] = _no_gap
_turns: Iterator[bool] = _NEVER
"""``False`` for each root lookup before the next recorded one, then ``True`` for that one.
The lookup that draws the ``True`` draws the next countdown. A lookup of another thread
that finds the countdown run out meanwhile draws ``_RUN_OUT`` instead (``next``'s default)."""


class _RunOut:
    """Drawn from a countdown that has run out: the thread that drew its ``True`` has not yet
    drawn the next one, which can take a whole switch interval (5 ms) of the GIL when that
    thread is preempted in between. The lookup then is a trial of its own on a countdown it
    draws itself: a geometric countdown has no memory, so one replaced before it ran out
    leaves every lookup's chance the ratio. Before, such lookups were simply not recorded,
    and a preempted thread could lose the trials of 35 ms of seven other threads."""

    __slots__ = ()


_RUN_OUT: Any = _RunOut()
_record: Callable[..., int | None] = _tracing.record_span
"""Records a span that already happened: the running tracer's own ``record`` while tracing
is on (one call less on each recorded lookup), ``spans.record_span`` otherwise."""
_record_keys = False
_toggle_lock = Lock()


def _countdown(gap: int) -> Iterator[bool]:
    """The root lookup ``gap`` from now (1: the next one) is recorded; none when 0."""
    return itertools.chain(itertools.repeat(False, gap - 1), _TURN) if gap else _NEVER


def _draw_turns() -> Iterator[bool]:
    return _countdown(_next_gap())


def _tracing_toggled(on: bool) -> None:
    global _context, _EMPTY, _next_gap, _turns, _record, _record_keys
    found = _tracing.root_sampling() if on else None
    with _toggle_lock:
        _EMPTY = _NOT_A_CONTEXT  # first: no lookup counts down on a half-made state
        _record_keys = _tracing.records_keys()
        if found is None:
            _context, _next_gap, _turns = _no_context, _no_gap, _NEVER
            _record = _tracing.record_span
            return
        _context, _next_gap, _record = found.read, found.gap, found.record
        _turns = _ALWAYS if found.every else _draw_turns()
        _EMPTY = found.empty


_tracing.on_toggle(_tracing_toggled)


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
    lookup. Attributes of the wrapped cache (``maxsize``, ``ttl``, ...) are read through.
    """

    __slots__ = (
        "__weakref__",
        "_cache",
        "_claims",
        "_get",
        "_get_latency",
        "_get_span",
        "_hits",
        "_misses",
        "_put_countdown",
        "_put_latency",
        "_puts",
        "_raw_popitem",
        "_recorder",
        "_removals",
        "_sizes",
    )
    _timed = False
    """Whether every lookup outside a span is timed too (``TimedMapping``)."""

    def __init__(self, cache: MutableMapping[K, V], recorder: CacheRecorder) -> None:
        self._cache = cache
        self._recorder = recorder
        self._claims = recorder.claims
        self._get = cache.get
        self._hits = recorder.hits.counter
        self._misses = recorder.misses.counter
        self._puts = recorder.puts.counter
        self._removals = recorder.removals.counter
        self._get_latency = recorder.latency("get")
        self._get_span = "get " + recorder.name
        self._put_latency = recorder.latency("put")
        self._put_countdown = 0
        self._sizes = EntrySizeSampler()
        base = _cachetools_base(cache)
        self._raw_popitem = cache.popitem
        if base is not None:
            _hook_cachetools(cache, recorder)
            self._raw_popitem = getattr(cache, _HOOKED)

    # --- lookups ----------------------------------------------------------------------------
    def __getitem__(self, key: K) -> V:
        if WATCH:
            if OPEN or _context() is not _EMPTY:
                value = self._decided_get(key, _MISSING, True)
            elif turn := next(_turns, _RUN_OUT):
                value = self._root_get(key, _MISSING, True, turn)
            else:
                value = self._plain_get(key, _MISSING, True)
            if value is _MISSING:
                raise KeyError(key)
            return cast(V, value)
        try:
            value = self._cache[key]
        except KeyError:
            next(self._misses)
            raise
        except Exception as exc:
            self._recorder.error("get", exc)
            raise
        next(self._hits)
        return value

    def get(self, key: K, default: Any = None) -> Any:
        if WATCH:
            if OPEN or _context() is not _EMPTY:
                return self._decided_get(key, default, False)
            if turn := next(_turns, _RUN_OUT):
                return self._root_get(key, default, False, turn)
        try:
            value = self._get(key, _MISSING)
        except Exception as exc:
            self._recorder.error("get", exc)
            raise
        if value is _MISSING:
            next(self._misses)
            return default
        next(self._hits)
        return value

    def _plain_get(self, key: K, default: Any, subscript: bool) -> Any:
        """A lookup counted as on the hot path (``default`` when it misses); ``subscript``
        looks up with ``[]`` so that ``__missing__`` runs."""
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
            raise
        if value is _MISSING:
            next(self._misses)
            return default
        next(self._hits)
        return value

    def _watched_get(self, key: K, default: Any, subscript: bool) -> Any:
        """A lookup while tracing is on or an operation is open somewhere (``get`` and
        ``[]`` have this inline): a root lookup counts down to its turn to be recorded."""
        if OPEN or _context() is not _EMPTY:
            return self._decided_get(key, default, subscript)
        if turn := next(_turns, _RUN_OUT):
            return self._root_get(key, default, subscript, turn)
        return self._plain_get(key, default, subscript)

    def _root_get(self, key: K, default: Any, subscript: bool, turn: object) -> Any:
        """A root lookup whose turn it is to be recorded (``turn`` True): draws the next
        countdown first. One that found the countdown run out (``_RUN_OUT``) draws its own
        and is recorded when that says now."""
        global _turns
        if turn is _RUN_OUT:
            gap = _next_gap()
            if gap != 1:  # this lookup is the count's first trial, and not its turn
                _turns = _countdown(gap - 1) if gap else _NEVER
                return self._plain_get(key, default, subscript)
        if _turns is not _ALWAYS:
            _turns = _draw_turns()
        return self._slow_get(key, default, subscript, True, None, True)

    def _decided_get(self, key: K, default: Any, subscript: bool) -> Any:
        """A lookup inside a span or while an operation is open somewhere. ``sample`` is a
        function that says no while tracing is off, so it is called without reading the
        flag first."""
        traced = _tracing.sample()
        claim = self._claim() if _nesting.OPEN else None
        if traced or claim is not None:
            return self._slow_get(key, default, subscript, traced, claim)
        return self._plain_get(key, default, subscript)

    def _claim(self) -> Claim | None:
        return claim_on(self._recorder) if self._claims else None

    def _slow_get(
        self,
        key: K,
        default: Any,
        subscript: bool,
        traced: bool,
        claim: Claim | None,
        root: bool = False,
    ) -> Any:
        """A lookup that is recorded as a span (``traced``; ``root`` when no span is
        active), or handed to the operation that ``claim``s this cache, or both. A traced
        lookup is timed by the span's own clock (``time_ns``: one read each side, where a
        second clock would cost two more), and its latency carries the span's trace id as
        an exemplar."""
        started = time_ns()
        failure: Exception | None = None
        value = _MISSING
        try:
            if subscript:
                try:
                    value = self._cache[key]
                except KeyError:
                    value = _MISSING
            else:
                value = self._get(key, _MISSING)
        except Exception as exc:  # noqa: BLE001 - re-raised once the span has it
            failure = exc
        ended = time_ns()
        if ended < started:  # the wall clock stepped back meanwhile
            ended = started
        hit = value is not _MISSING
        trace_id = None
        if traced:
            name = self._recorder.name
            if _record_keys:
                attributes = _tracing.cache_attributes(name, "get", key)
            else:
                attributes = {CACHE_NAME: name, CACHE_OPERATION: "get"}
            if failure is None:
                attributes[CACHE_HIT] = hit
            trace_id = _record(self._get_span, attributes, started, ended, failure, root)
        if failure is not None:
            (self._recorder if claim is None else claim).error("get", failure)
            raise failure
        if claim is None:
            next(self._hits if hit else self._misses)
            if traced or self._timed:
                self._get_latency.observe((ended - started) / 1e9, trace_id, ended / 1e9)
        else:
            claim.count(hits=1) if hit else claim.count(misses=1)
        return value if hit else default

    def _slow_write(
        self, operation: str, key: K, write: Callable[[], None], traced: bool, claim: Claim | None
    ) -> None:
        """A put or remove recorded as a span, or handed to the operation that ``claim``s
        this cache, or both (counted by the caller when it succeeds)."""
        started = time_ns() if traced else 0
        start = perf_counter_ns()
        failure: Exception | None = None
        try:
            write()
        except Exception as exc:  # noqa: BLE001 - re-raised once the span has it
            failure = exc
        elapsed_ns = perf_counter_ns() - start
        trace_id = None
        if traced:
            name = self._recorder.name
            trace_id = _tracing.record_span(
                f"{operation} {name}",
                _tracing.cache_attributes(name, operation, key),
                started,
                started + elapsed_ns,
                failure,
            )
        if failure is not None:
            if not isinstance(failure, KeyError):
                (self._recorder if claim is None else claim).error(operation, failure)
            raise failure
        if claim is None and (traced or self._timed):
            latency = self._put_latency if operation == "put" else self._recorder.latency(operation)
            latency.observe(elapsed_ns / 1e9, trace_id)

    def setdefault(self, key: K, default: Any = None) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            self[key] = default
            return default
        return value

    # --- writes and deletes -----------------------------------------------------------------

    # --- writes and deletes -----------------------------------------------------------------
    def __setitem__(self, key: K, value: V) -> None:
        if WATCH:
            traced = _tracing.TRACING and _tracing.sample()
            claim = self._claim() if _nesting.OPEN else None
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
            self._put_countdown = SIZE_SAMPLE_EVERY - 1
            self._sizes.observe(key, value)
            start = perf_counter()
            try:
                self._cache[key] = value
            except Exception as exc:
                self._recorder.error("put", exc)
                raise
            if self._timed:
                self._put_latency.observe(perf_counter() - start)
        next(self._puts)

    def __delitem__(self, key: K) -> None:
        if WATCH:
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


class TimedMapping(InstrumentedMapping[K, V]):
    """An ``instrument()`` mapping that also times one lookup and put in
    ``sample_every`` (``latency_sample_every=N``): for mappings whose lookups are slow enough
    to be worth a clock (one that loads on ``__missing__``, one over a file or a remote
    store), where the latency panel and alert should see them."""

    __slots__ = ("_countdown", "_sample_every")
    _timed = True

    def __init__(
        self, cache: MutableMapping[K, V], recorder: CacheRecorder, sample_every: int
    ) -> None:
        super().__init__(cache, recorder)
        self._sample_every = sample_every
        self._countdown = 0
        self._put_countdown = 0

    def __getitem__(self, key: K) -> V:
        if WATCH:
            value = self._watched_get(key, _MISSING, True)
        else:
            value = self._plain_get(key, _MISSING, True)
        if value is _MISSING:
            raise KeyError(key)
        return cast(V, value)

    def get(self, key: K, default: Any = None) -> Any:
        if WATCH:
            return self._watched_get(key, default, False)
        return self._plain_get(key, default, False)

    def _plain_get(self, key: K, default: Any, subscript: bool) -> Any:
        countdown = self._countdown
        if countdown > 0:
            self._countdown = countdown - 1
            return InstrumentedMapping._plain_get(self, key, default, subscript)
        self._countdown = self._sample_every - 1
        start = perf_counter()
        value = InstrumentedMapping._plain_get(self, key, default, subscript)
        self._get_latency.observe(perf_counter() - start)
        return value


_forwarding_classes: dict[tuple[type, type, frozenset[str]], type] = {}
_forwarding_lock = Lock()


def _forwarded(name: str) -> property:
    def read(self: InstrumentedMapping[Any, Any]) -> Any:
        return getattr(self._cache, name)

    return property(read, doc=f"``{name}`` of the wrapped cache.")


def _forwarding_class(mapping_class: type, cache: object) -> type:
    """``mapping_class`` with a read-through property for each attribute of ``cache`` that
    the wrapper does not have itself (cachetools' ``maxsize``, ``ttl``, ``timer``, dict's
    ``copy``), made once per wrapped type and attribute set."""
    own = set(dir(mapping_class))
    names = frozenset(
        name
        for name in dir(cache)
        if not (name.startswith("__") and name.endswith("__")) and name not in own
    )
    if not names:
        return mapping_class
    key = (mapping_class, type(cache), names)
    with _forwarding_lock:
        klass = _forwarding_classes.get(key)
        if klass is None:
            namespace: dict[str, Any] = {"__slots__": (), "__module__": __name__}
            namespace.update((name, _forwarded(name)) for name in names)
            klass = type(mapping_class.__name__, (mapping_class,), namespace)
            klass.__qualname__ = mapping_class.__qualname__
            _forwarding_classes[key] = klass
        return klass


def instrument(
    cache: MutableMapping[K, V],
    name: str,
    *,
    max_entries: int | None = None,
    memory_limit_bytes: float | None = None,
    latency_sample_every: int | None = None,
    registry: CacheTable | None = None,
) -> InstrumentedMapping[K, V]:
    """Wrap ``cache`` (a dict, a cachetools cache, any MutableMapping) as logical cache ``name``.

    Use the returned mapping in place of the original. Several mappings may share a name;
    their entries and memory add up. ``latency_sample_every=N`` also times one lookup and
    put in N (and one put in 16 at most): worth it only where a lookup costs more than the
    clock (by default in-process lookups are counted, not timed; traced ones are timed).
    """
    if not isinstance(cache, MutableMapping):
        raise TypeError(f"instrument() needs a MutableMapping, not {type(cache).__name__}")
    if latency_sample_every is not None and latency_sample_every < 1:
        raise ValueError("latency_sample_every must be at least 1")
    if isinstance(cache, InstrumentedMapping):
        cache = cache.wrapped
    recorder = (registry or default_table()).recorder(name)
    wrapped: InstrumentedMapping[K, V]
    if latency_sample_every is None:
        wrapped = _forwarding_class(InstrumentedMapping, cache)(cache, recorder)
    else:
        klass = _forwarding_class(TimedMapping, cache)
        wrapped = klass(cache, recorder, latency_sample_every)
    recorder.add_weak_provider(
        wrapped, lambda mapping: mapping._reading(max_entries, memory_limit_bytes)
    )
    return wrapped
