"""Inline SVG sparklines of a trend window's samples: no script, no image file, no library,
so the pages stay inside their Content-Security-Policy and render before any script runs."""

from __future__ import annotations

from collections.abc import Sequence

from .html import e

WIDTH, HEIGHT = 100.0, 24.0


def sparkline(
    points: Sequence[Sequence[float]],
    *,
    kind: str,
    label: str,
    low: float | None = None,
    high: float | None = None,
    mark: float | None = None,
) -> str:
    """An SVG line of ``points`` ([timestamp, value] pairs, oldest first) between ``low``
    and ``high`` (default: the values' own range), with a dashed line at ``mark`` (a
    threshold); empty with fewer than two points. ``label`` says what it shows, for screen
    readers and as a tooltip."""
    if len(points) < 2:
        return ""
    times = [p[0] for p in points]
    values = [p[1] for p in points]
    bottom = min(values) if low is None else min(low, min(values))
    top = max(values) if high is None else max(high, max(values))
    if top <= bottom:
        top = bottom + 1.0
    start, span = times[0], max(times[-1] - times[0], 1e-9)

    def y(value: float) -> float:
        return HEIGHT - 1 - (value - bottom) / (top - bottom) * (HEIGHT - 2)

    line = " ".join(f"{(t - start) / span * WIDTH:.1f},{y(v):.1f}" for t, v in points)
    threshold = ""
    if mark is not None and bottom <= mark <= top:
        threshold = f'<line x1="0" x2="{WIDTH:g}" y1="{y(mark):.1f}" y2="{y(mark):.1f}"/>'
    return (
        f'<svg class="spark {e(kind)}" viewBox="0 0 {WIDTH:g} {HEIGHT:g}" '
        f'preserveAspectRatio="none" role="img" aria-label="{e(label)}" '
        f'data-points="{len(points)}"><title>{e(label)}</title>'
        f'<rect width="{WIDTH:g}" height="{HEIGHT:g}"/>{threshold}'
        f'<polyline points="{line}"/></svg>'
    )
