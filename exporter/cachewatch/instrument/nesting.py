"""One lookup counts once, however the wrappers nest.

``trace_cache_operation("get", "search_cache")`` around a lookup that another wrapper sees
too (a command of an ``instrument_redis()`` client, a lookup in an ``instrument()`` mapping,
another ``trace_cache_operation``, the ``cache_metrics()`` recorder API) would count it
twice. So while an operation is open it *claims* its cache in the current context (a
``ContextVar``: the thread, or the asyncio task and the tasks it starts): whatever is
recorded on that cache inside the block is handed to the operation, which counts once
when it closes:

* lookups, puts, removals: its own outcome (``hit()``, ``miss()``, ``result()``, or a put
  or remove by its operation's name) replaces what the block saw of the same kind; what
  the block saw of other kinds (the ``SET`` of a read-through after its ``GET`` missed)
  is counted as it happened; with no outcome of its own, everything the block saw is;
* latency: the operation's own only (the calls inside are part of it);
* errors: its own when it fails; otherwise those the block saw (calls that failed and
  were caught, as before a retry).

Other caches used inside the block are counted as usual: those are other lookups. A cache
published by ``watch_lru()`` counts its lookups from ``cache_info()``; an operation on it
adds latency, errors and a span, never a second hit or miss.

Cost: a recorder looks for a claim only while its own cache has an operation open
somewhere (``CacheRecorder.claims``, a list whose truth is one attribute read); the
``instrument()`` mapping's hot path first reads ``OPEN``, the operations open in the whole
process, which is cheaper there than any attribute of the mapping itself. The operation
pays for its claim: one ``ContextVar`` set and reset (a ``threading.local`` would be
cheaper but would not follow asyncio tasks) and two list appends and removes, about 5,400
instructions (~0.5 µs), 1% of a loopback Redis GET.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .recorder import CacheRecorder

INNERMOST: ContextVar[Claim | None] = ContextVar("cachewatch_open_operation", default=None)
"""The innermost open claim of this context; each claim links to the one it is inside."""
OPEN: list[Claim] = []
"""Every open claim of the process, in any context (``list.append``/``remove`` are atomic)."""
_LOCK = threading.Lock()
"""Guards a claim's counts against its closing: taken when something is handed over (a
nested lookup) and when a claim closes, each time for a few instructions."""


class Claim:
    """What was recorded on one cache inside one open operation, until it closes
    (``CacheOperation`` is one). Recording on a claim that has closed meanwhile (a thread or
    task that outlived the block) goes to the recorder itself, so nothing is lost."""

    __slots__ = ("_counts", "_errors", "open", "outer", "recorder")

    def __init__(self, recorder: CacheRecorder) -> None:
        self.recorder = recorder
        self.open = False
        self.outer: Claim | None = None
        self._counts: list[int] | None = None  # hits, misses, puts, removals; made on first use
        self._errors: list[tuple[str, BaseException | type[BaseException] | str]] | None = None

    # --- the recorder's counting API, held back ---------------------------------------------
    def count(self, *, hits: int = 0, misses: int = 0, puts: int = 0, removals: int = 0) -> None:
        with _LOCK:
            if self.open:
                counts = self._counts
                if counts is None:
                    self._counts = [hits, misses, puts, removals]
                else:
                    counts[0] += hits
                    counts[1] += misses
                    counts[2] += puts
                    counts[3] += removals
                return
        self.recorder.count(hits=hits, misses=misses, puts=puts, removals=removals)

    def observe(self, operation: str, seconds: float, trace_id: str | None = None) -> None:
        if not self.open:
            self.recorder.observe(operation, seconds, trace_id)

    def error(self, operation: str, exc: BaseException | type[BaseException] | str) -> None:
        with _LOCK:
            if self.open:
                if self._errors is None:
                    self._errors = []
                self._errors.append((operation, exc))
                return
        self.recorder.error(operation, exc)

    @property
    def hits(self) -> int:
        return 0 if self._counts is None else self._counts[0]

    @property
    def lookups(self) -> int:
        return 0 if self._counts is None else self._counts[0] + self._counts[1]

    # --- closing ----------------------------------------------------------------------------
    def close(self) -> None:
        """Stop holding counts back (under the lock, so that a count handed over from
        another thread at this moment is either held or goes to the recorder)."""
        with _LOCK:
            self.open = False

    def settle(self, outcome: str | None, failed: bool) -> None:
        """After ``close``: count what the block saw on the recorder (which hands it on to
        an enclosing operation of the same cache, if any): all of it but the kind of
        ``outcome`` (the operation counts that itself) and, when the operation ``failed``,
        the errors."""
        counts = self._counts
        if counts is not None:
            hits, misses, puts, removals = counts
            if outcome == "lookup":
                hits = misses = 0
            elif outcome == "puts":
                puts = 0
            elif outcome == "removals":
                removals = 0
            if hits or misses or puts or removals:
                self.recorder.count(hits=hits, misses=misses, puts=puts, removals=removals)
        if self._errors is not None and not failed:
            for operation, exc in self._errors:
                self.recorder.error(operation, exc)


def claim_on(recorder: CacheRecorder) -> Claim | None:
    """The innermost open operation on ``recorder`` in this context, if any."""
    claim = INNERMOST.get()
    while claim is not None:
        if claim.recorder is recorder and claim.open:
            return claim
        claim = claim.outer
    return None
