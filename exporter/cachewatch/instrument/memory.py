"""Bounded-cost memory estimates for in-process caches.

Walking every entry on every scrape would make a scrape O(cache size). Instead a small,
fixed sample of entries is measured (on writes, and from the cache itself when nothing was
written yet) and the mean entry size is multiplied by the entry count.
"""

from __future__ import annotations

import itertools
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

MAX_DEPTH = 3
MAX_ITEMS_PER_CONTAINER = 16
SAMPLE_SIZE = 64


def sizeof(obj: object, depth: int = MAX_DEPTH) -> int:
    """Approximate deep size of ``obj``: containers are sampled and scaled, depth-limited."""
    size = sys.getsizeof(obj)
    if depth <= 0 or isinstance(obj, (str, bytes, bytearray, int, float, bool, type(None))):
        return size
    if isinstance(obj, Mapping):
        pairs: list[Any] = _head(obj.items())
        return size + _scaled(
            (sizeof(key, depth - 1) + sizeof(value, depth - 1) for key, value in pairs), len(obj)
        )
    if isinstance(obj, (list, tuple, set, frozenset)):
        return size + _scaled((sizeof(item, depth - 1) for item in _head(obj)), len(obj))
    attributes = getattr(obj, "__dict__", None)
    if isinstance(attributes, dict):
        return size + sizeof(attributes, depth - 1)
    return size


def _head(items: Iterable[object]) -> list[object]:
    try:
        return list(itertools.islice(items, MAX_ITEMS_PER_CONTAINER))
    except RuntimeError:  # changed size during iteration: measure nothing rather than fail
        return []


def _scaled(sizes: Iterable[int], total_items: int) -> int:
    measured = list(sizes)
    if not measured:
        return 0
    return int(sum(measured) / len(measured) * total_items)


class EntrySizeSampler:
    """Keeps the mean size of the last ``SAMPLE_SIZE`` measured entries (a ring buffer)."""

    __slots__ = ("_filled", "_lock", "_next", "_ring")

    def __init__(self) -> None:
        self._ring = [0] * SAMPLE_SIZE
        self._next = 0
        self._filled = 0
        self._lock = threading.Lock()

    def observe(self, key: object, value: object) -> None:
        measured = sizeof(key) + sizeof(value)
        with self._lock:
            self._ring[self._next] = measured
            self._next = (self._next + 1) % SAMPLE_SIZE
            self._filled = min(self._filled + 1, SAMPLE_SIZE)

    @property
    def samples(self) -> int:
        return self._filled

    def mean(self) -> float | None:
        with self._lock:
            if not self._filled:
                return None
            return sum(self._ring[: self._filled]) / self._filled

    def seed_from(self, cache: Mapping[object, object], peek: Callable[[object], object]) -> None:
        """Measure a few entries of a cache filled before it was wrapped.

        ``peek`` reads an entry without the side effects of a lookup (LRU reordering).
        """
        try:
            keys = list(itertools.islice(iter(cache), SAMPLE_SIZE))
        except RuntimeError:
            return
        for key in keys:
            try:
                value = peek(key)
            except Exception:  # noqa: BLE001 - gone, expired, or a mapping with its own rules
                continue
            self.observe(key, value)
