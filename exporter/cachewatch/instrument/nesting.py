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
process, which is cheaper there than any attribute of the mapping itself.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .recorder import CacheRecorder

_OPEN: ContextVar[tuple[Claim, ...]] = ContextVar("cachewatch_open_operations", default=())
OPEN: list[Claim] = []
"""Every open claim of the process, in any context (``list.append``/``remove`` are atomic)."""


class Claim:
    """What was recorded on one cache inside one open operation, until it closes.

    Recording on a claim that has closed meanwhile (a thread or task that outlived the
    block) goes to the recorder itself, so nothing is lost."""

    __slots__ = ("_lock", "errors", "hits", "misses", "open", "puts", "recorder", "removals")

    def __init__(self, recorder: CacheRecorder) -> None:
        self.recorder = recorder
        self.open = True
        self.hits = self.misses = self.puts = self.removals = 0
        self.errors: list[tuple[str, BaseException | type[BaseException] | str]] = []
        self._lock = threading.Lock()

    # --- the recorder's counting API, held back ---------------------------------------------
    def count(self, *, hits: int = 0, misses: int = 0, puts: int = 0, removals: int = 0) -> None:
        with self._lock:
            if self.open:
                self.hits += hits
                self.misses += misses
                self.puts += puts
                self.removals += removals
                return
        self.recorder.count(hits=hits, misses=misses, puts=puts, removals=removals)

    def observe(self, operation: str, seconds: float, trace_id: str | None = None) -> None:
        if not self.open:
            self.recorder.observe(operation, seconds, trace_id)

    def error(self, operation: str, exc: BaseException | type[BaseException] | str) -> None:
        with self._lock:
            if self.open:
                self.errors.append((operation, exc))
                return
        self.recorder.error(operation, exc)

    @property
    def lookups(self) -> int:
        return self.hits + self.misses

    # --- closing ----------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self.open = False

    def settle(self, outcome: str | None, failed: bool) -> None:
        """Count what the block saw on the recorder (which hands it on to an enclosing
        operation of the same cache, if any): all of it but the kind of ``outcome`` (the
        operation counts that itself) and, when the operation ``failed``, the errors."""
        counts = {"hits": self.hits, "misses": self.misses, "puts": self.puts}
        counts["removals"] = self.removals
        if outcome == "lookup":
            counts["hits"] = counts["misses"] = 0
        elif outcome is not None:
            counts[outcome] = 0
        if any(counts.values()):
            self.recorder.count(**counts)
        if not failed:
            for operation, exc in self.errors:
                self.recorder.error(operation, exc)


def claim_on(recorder: CacheRecorder) -> Claim | None:
    """The innermost open operation on ``recorder`` in this context, if any."""
    for claim in reversed(_OPEN.get()):
        if claim.recorder is recorder and claim.open:
            return claim
    return None


def open_claim(recorder: CacheRecorder) -> tuple[Claim, Token[tuple[Claim, ...]]]:
    """Claim ``recorder`` in this context until ``close_claim``."""
    claim = Claim(recorder)
    token = _OPEN.set((*_OPEN.get(), claim))
    recorder.claims.append(claim)  # list.append: atomic, no lock needed
    OPEN.append(claim)
    return claim, token


def close_claim(claim: Claim, token: Token[tuple[Claim, ...]]) -> None:
    claim.close()
    try:
        _OPEN.reset(token)
    except ValueError:  # closed in another context than it was opened in
        _OPEN.set(tuple(c for c in _OPEN.get() if c is not claim))
    claim.recorder.claims.remove(claim)
    OPEN.remove(claim)
