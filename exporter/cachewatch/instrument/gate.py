"""The one check an ``instrument()`` lookup makes before it counts: ``if WATCH``.

A plain hit needs nothing but the lookup and a counter bump. Two things ask for more: tracing
(an operation may be sampled as a span) and an open ``trace_cache_operation`` somewhere in
the process (the lookup may belong to it: ``nesting``). Each puts a marker in ``WATCH`` while
it lasts, so the hot path reads one global list instead of two module flags (a module
attribute read costs about twice a global read, and the tracing flag is followed by a call).
"""

from __future__ import annotations

from ..tracing import spans

WATCH: list[object] = []
"""Non-empty while tracing is on or any operation is open; ``list.append``/``remove`` are
atomic under the GIL, so no lock is needed to add or drop a marker."""

_TRACING_ON = "tracing"


def _tracing_toggled(on: bool) -> None:
    if on:
        WATCH.append(_TRACING_ON)
    else:
        while _TRACING_ON in WATCH:
            WATCH.remove(_TRACING_ON)


spans.on_toggle(_tracing_toggled)
