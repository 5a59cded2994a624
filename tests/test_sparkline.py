"""Sparklines: the trend window's samples as an inline SVG line."""

from __future__ import annotations

import re

from cachewatch.web.sparkline import sparkline


def points(svg: str) -> list[tuple[float, float]]:
    (found,) = re.findall(r'<polyline points="([^"]+)"', svg)
    return [tuple(map(float, pair.split(","))) for pair in found.split()]  # type: ignore[misc]


def test_a_line_spans_the_box_between_its_bounds() -> None:
    svg = sparkline([[0, 0.0], [5, 0.5], [10, 1.0]], kind="ratio", label="hit <ratio>", low=0.0,
                    high=1.0, mark=0.8)  # fmt: skip
    assert points(svg) == [(0.0, 23.0), (50.0, 12.0), (100.0, 1.0)]
    assert 'data-points="3"' in svg and "<title>hit &lt;ratio&gt;</title>" in svg
    (line,) = re.findall(r'<line [^>]*y1="([\d.]+)"', svg)
    assert float(line) == round(23 - 0.8 * 22, 1)


def test_values_beyond_the_bounds_widen_them_and_a_flat_line_stays_inside() -> None:
    assert points(sparkline([[0, 0], [1, 200]], kind="memory", label="m", low=0, high=100))[1] == (
        100.0, 1.0,
    )  # fmt: skip
    flat = points(sparkline([[0, 5], [1, 5]], kind="memory", label="m"))
    assert all(0 <= y <= 24 for _, y in flat)


def test_fewer_than_two_points_draw_nothing() -> None:
    assert sparkline([], kind="ratio", label="x") == ""
    assert sparkline([[1, 0.5]], kind="ratio", label="x") == ""
    assert "<line" not in sparkline([[0, 0.9], [1, 1.0]], kind="ratio", label="x", mark=0.5)
