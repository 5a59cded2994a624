"""Hooks run around ``os.fork`` that do not keep their objects alive: gunicorn (with
``--preload``), uWSGI and ``multiprocessing`` fork processes that inherit cachewatch's
objects but none of their threads."""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable


def weak_call(method: Callable[[], None]) -> Callable[[], None]:
    """``method`` called through a weak reference (a no-op once its object is gone)."""
    ref = weakref.WeakMethod(method)

    def call() -> None:
        target = ref()
        if target is not None:
            target()

    return call


def at_fork(
    *,
    before: Callable[[], None] | None = None,
    after_in_parent: Callable[[], None] | None = None,
    after_in_child: Callable[[], None] | None = None,
) -> None:
    """``os.register_at_fork`` with bound methods held weakly."""
    hooks = {
        name: weak_call(method)
        for name, method in (
            ("before", before),
            ("after_in_parent", after_in_parent),
            ("after_in_child", after_in_child),
        )
        if method is not None
    }
    os.register_at_fork(**hooks)
