"""The logical caches of this process, by name, with a cap on how many names there may be.

Every in-process cache registers here; the local source reads the table at collection time.
Past the cap, new names share the ``cache="other"`` recorder so that a bug that makes a
cache per request cannot explode the number of series.
"""

from __future__ import annotations

import threading

from ..catalog import OTHER
from ..config import environment
from .recorder import CacheRecorder, Tally

MAX_NAME_LENGTH = 200


class CacheTable:
    """Name -> recorder, capped at ``max_caches`` distinct names (the rest go to ``other``).

    ``max_caches`` defaults to ``--cache.max-names`` as the environment sets it
    (``CACHEWATCH_CACHE_MAX_NAMES``).
    """

    def __init__(self, max_caches: int | None = None, source: str = "local") -> None:
        if max_caches is None:
            max_caches = environment.max_caches()
        if max_caches < 1:
            raise ValueError("max_caches must be at least 1")
        self.max_caches = max_caches
        self.source = source
        self.dropped = Tally()
        self._recorders: dict[str, CacheRecorder] = {}
        self._lock = threading.Lock()

    def recorder(self, name: str) -> CacheRecorder:
        """The recorder for ``name``, created on first use."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError("a cache name must be a non-empty string")
        if len(name) > MAX_NAME_LENGTH:
            raise ValueError(f"a cache name must be at most {MAX_NAME_LENGTH} characters")
        found = self._recorders.get(name)
        if found is not None:
            return found
        with self._lock:
            found = self._recorders.get(name)
            if found is not None:
                return found
            if name != OTHER and len(self._recorders) >= self.max_caches:
                self.dropped.inc()
                name = OTHER
                found = self._recorders.get(name)
                if found is not None:
                    return found
            created = CacheRecorder(name, self.source)
            self._recorders[name] = created
            return created

    def recorders(self) -> list[CacheRecorder]:
        with self._lock:
            return list(self._recorders.values())

    def after_fork(self) -> None:
        """In a forked child: free the locks that a thread of the parent may have held."""
        self._lock._at_fork_reinit()  # type: ignore[attr-defined]
        self.dropped.after_fork()
        for recorder in list(self._recorders.values()):
            recorder.after_fork()

    def clear(self) -> None:
        """Forget every cache (for tests and for applications that rebuild their caches)."""
        with self._lock:
            self._recorders.clear()


_default: CacheTable | None = None
_default_lock = threading.Lock()


def default_table() -> CacheTable:
    """The process-wide table that the module-level API uses, made on first use (so that
    importing cachewatch reads no setting). In multi-process mode
    (``CACHEWATCH_MULTIPROCESS_DIR`` or ``PROMETHEUS_MULTIPROC_DIR``) its flusher starts with
    it."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = CacheTable()
                multiprocess = environment.multiprocess()
                if multiprocess is not None:
                    from .flusher import start_flusher

                    start_flusher(_default, multiprocess)
    return _default


def cache_metrics(
    name: str,
    *,
    max_entries: int | None = None,
    memory_limit_bytes: float | None = None,
    registry: CacheTable | None = None,
) -> CacheRecorder:
    """A recorder for a cache of any other kind: call its ``hit()``, ``miss()``, ``put()``...
    (``registry``: a table other than the process-wide one, as for every public wrapper)."""
    recorder = (registry or default_table()).recorder(name)
    recorder.set_limits(max_entries=max_entries, memory_limit_bytes=memory_limit_bytes)
    return recorder
