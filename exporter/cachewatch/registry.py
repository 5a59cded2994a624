"""The logical caches of this process, by name, with a cap on how many names there may be.

Every in-process cache registers here; the local source reads the registry at collection
time. Past the cap, new names share the ``cache="other"`` recorder so that a bug that makes
a cache per request cannot explode the number of series.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping

from .catalog import OTHER_CACHE
from .recorder import CacheRecorder, Tally

DEFAULT_MAX_CACHES = 200
MAX_NAME_LENGTH = 200
MAX_NAMES_ENV = "CACHEWATCH_CACHE_MAX_NAMES"
"""The same variable as ``--cache.max-names``, so embedded mode honours it too."""

log = logging.getLogger(__name__)


def max_caches_from_env(environ: Mapping[str, str] | None = None) -> int:
    """The cap from ``CACHEWATCH_CACHE_MAX_NAMES``; a bad value is logged and ignored
    (an application must not fail to import over a monitoring setting)."""
    raw = (os.environ if environ is None else environ).get(MAX_NAMES_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_CACHES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        log.warning(
            "%s=%r is not a positive integer; using %d", MAX_NAMES_ENV, raw[:40], DEFAULT_MAX_CACHES
        )
        return DEFAULT_MAX_CACHES
    return value


class CacheRegistry:
    """Name -> recorder, capped at ``max_caches`` distinct names (the rest go to ``other``)."""

    def __init__(self, max_caches: int = DEFAULT_MAX_CACHES, source: str = "local") -> None:
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
            if name != OTHER_CACHE and len(self._recorders) >= self.max_caches:
                self.dropped.inc()
                name = OTHER_CACHE
                found = self._recorders.get(name)
                if found is not None:
                    return found
            created = CacheRecorder(name, self.source)
            self._recorders[name] = created
            return created

    def recorders(self) -> list[CacheRecorder]:
        with self._lock:
            return list(self._recorders.values())

    def clear(self) -> None:
        """Forget every cache (for tests and for applications that rebuild their caches)."""
        with self._lock:
            self._recorders.clear()


_default = CacheRegistry(max_caches=max_caches_from_env())


def default_registry() -> CacheRegistry:
    """The process-wide registry that the module-level API uses."""
    return _default
