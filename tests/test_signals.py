"""analysis/signals.py: its median is statistics.median's, without importing statistics."""

from __future__ import annotations

import statistics

from hypothesis import given
from hypothesis import strategies as st

from cachewatch.analysis.signals import median


@given(st.lists(st.floats(allow_nan=False, min_value=-1e300, max_value=1e300), min_size=1))
def test_the_same_median_as_statistics(values: list[float]) -> None:
    assert median(values) == statistics.median(values)
