"""Concurrent identical requests share one computation (Go's singleflight).

Fifty scrapers hitting /metrics at once would otherwise poll every source and render the
whole exposition fifty times; with this, requests that arrive while an identical one is
being computed wait for it and share its result. Nothing is cached afterwards: a request
never gets a result computed before the previous one finished.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class _Call(Generic[T]):
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[Hashable, _Call[T]] = {}
        self.shared = 0
        """How many calls were answered by another call's computation."""

    def do(self, key: Hashable, compute: Callable[[], T], timeout: float = 30.0) -> T:
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if call is None:
                call = self._calls[key] = _Call()
            else:
                self.shared += 1
        if not leader:
            if not call.done.wait(timeout):
                raise TimeoutError("the shared computation did not finish in time")
        else:
            try:
                call.result = compute()
            except BaseException as exc:
                call.error = exc
                raise
            finally:
                with self._lock:
                    del self._calls[key]
                call.done.set()
        if call.error is not None:
            raise RuntimeError("the shared computation failed") from call.error
        return call.result  # type: ignore[return-value]
