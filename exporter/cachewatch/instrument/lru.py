"""``watch_lru``: a ``functools.lru_cache`` function published as a logical cache, read from
its own ``cache_info()`` at collection time, so that calls cost nothing extra."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .recorder import Reading
from .table import CacheTable, default_table

F = TypeVar("F", bound=Callable[..., Any])


def watch_lru(func: F, name: str, *, registry: CacheTable | None = None) -> F:
    """Publish a ``functools.lru_cache``/``functools.cache`` function's statistics as ``name``.

    Everything is read from ``cache_info()`` at collection time, so calls cost nothing
    extra. Puts and evictions are derived (every miss stores its result; misses that did not
    stay as entries were evicted), which assumes the function did not raise. Returns
    ``func`` unchanged, so it works as a decorator helper.
    """
    if not callable(getattr(func, "cache_info", None)):
        raise TypeError("watch_lru() needs a function wrapped by functools.lru_cache or cache")
    recorder = (registry or default_table()).recorder(name)
    recorder.counts_lookups_itself = True  # cache_info() is the one count of its lookups

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
