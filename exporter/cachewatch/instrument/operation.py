"""``trace_cache_operation``: one operation on a cache of any kind (typically a remote one),
timed, with its outcome, errors and, when sampled, a span that is active for the block.
While the block runs the operation claims its cache, so that a wrapper inside it (an
``instrument_redis()`` client, an ``instrument()`` mapping) does not count the same lookup
a second time (``nesting``)."""

from __future__ import annotations

from contextvars import Token
from threading import get_ident
from time import perf_counter
from types import TracebackType

from ..tracing import spans as _tracing
from ..tracing.attributes import CACHE_HIT
from . import gate, nesting
from .nesting import Claim
from .recorder import CacheRecorder
from .table import CacheTable, default_table

PUT_OPERATIONS = frozenset({"put", "set", "write", "store"})
REMOVE_OPERATIONS = frozenset({"remove", "delete", "del", "invalidate"})


class CacheOperation(Claim):
    """One timed cache operation; say how a lookup went with ``hit()``, ``miss()`` or
    ``result(value)`` (``None`` is a miss).

    When tracing is on and the operation is sampled it is also a span, active for the
    block's duration, so that a Redis call made inside becomes its child; its latency
    carries the span's trace id as an exemplar.
    """

    __slots__ = ("_outcome", "_span", "_start", "_token", "cache", "key", "operation")

    def __init__(self, operation: str, recorder: CacheRecorder, key: object = None) -> None:
        # Claim's fields, set here rather than by a call to Claim.__init__ (see __enter__)
        self.recorder = recorder
        self.open = False
        self.outer: Claim | None = None
        self.owner = 0
        self._counts = None
        self._errors = None
        self.operation = operation
        self.cache = recorder.name
        self.key = key
        self._outcome: bool | None = None
        self._start = 0.0
        self._span: _tracing.Span | None = None
        self._token: Token[Claim | None] | None = None

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
        # Claim the cache in this context (inline: this wraps every remote lookup).
        self.open = True
        self.owner = get_ident()
        self.outer = nesting.INNERMOST.get()
        self._token = nesting.INNERMOST.set(self)
        self.recorder.claims.append(self)
        nesting.OPEN.append(self)
        gate.WATCH.append(self)
        if _tracing.TRACING and _tracing.sample():
            self._span = _tracing.start_span(
                f"{self.operation} {self.cache}",
                _tracing.cache_attributes(self.cache, self.operation, self.key),
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
        self.close()
        token = self._token
        if token is not None:
            self._token = None
            try:
                nesting.INNERMOST.reset(token)
            except ValueError:  # left in another context than it was entered in
                if nesting.INNERMOST.get() is self:
                    nesting.INNERMOST.set(self.outer)
            recorder.claims.remove(self)
            nesting.OPEN.remove(self)
            gate.WATCH.remove(self)
        outcome = self._outcome
        span = self._span
        if span is None:
            recorder.observe(self.operation, elapsed)
        else:
            recorder.observe(self.operation, elapsed, span.trace_id)
            if outcome is None and self.lookups == 1:
                outcome = self.hits == 1  # the one lookup made inside tells how it went
            if outcome is not None:
                span.set(CACHE_HIT, outcome)
            self._span = None
            span.end(exc)
        held = self._counts is not None or self._errors is not None
        if exc is not None:
            recorder.error(self.operation, exc)
            if held:
                self.settle(None, failed=True)
            return
        kind: str | None = None
        if self._outcome is not None:
            kind = "lookup"
            if not recorder.counts_lookups_itself:
                (recorder.hit if self._outcome else recorder.miss)()
        elif self.operation in PUT_OPERATIONS:
            kind = "puts"
            recorder.put()
        elif self.operation in REMOVE_OPERATIONS:
            kind = "removals"
            recorder.remove()
        if held:
            self.settle(kind, failed=False)


def trace_cache_operation(
    operation: str, cache: str, key: object = None, *, registry: CacheTable | None = None
) -> CacheOperation:
    """Time one operation on logical cache ``cache`` and record its outcome.

    ``with trace_cache_operation("get", "search_cache", key) as op: op.result(redis.get(key))``
    counts a hit or a miss, observes the latency and counts an exception as an error (and
    re-raises it). Writes (``put``/``set``) and deletes (``remove``/``delete``) are counted
    when the block succeeds.
    """
    return CacheOperation(operation, (registry or default_table()).recorder(cache), key)
