"""Least-squares trend lines over a sliding time window, O(1) per sample.

The slope is the ordinary least-squares fit of value against time over the samples in the
window, which is what Prometheus's ``deriv()`` computes over a range, so the exporter's trend
gauges and ``deriv(...)`` over the same samples agree.

Why this is stable over long uptimes: running sums of ``t`` and ``t**2`` with Unix
timestamps (~1.8e9) lose every significant digit of a fit over a few minutes. Times and
values are therefore kept relative to a reference point (the first sample in the window);
the reference moves with the window, and every ``capacity`` samples the sums are recomputed
from the ring buffer, so the floating-point error of adding and removing samples cannot
accumulate. The recompute costs O(capacity) once per ``capacity`` samples: O(1) amortised.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Fit:
    """The line ``value = intercept + slope * (t - at)``: ``intercept`` is the value at ``at``."""

    slope: float
    intercept: float
    at: float
    samples: int

    def predict(self, t: float) -> float:
        return self.intercept + self.slope * (t - self.at)

    def time_to_rise_to(self, target: float, current: float) -> float | None:
        """Seconds until a value now at ``current`` rises to ``target`` along this slope.

        None when not rising; 0 when already at or above the target.
        """
        if self.slope <= 0:
            return None
        return max(0.0, (target - current) / self.slope)


class SlidingFit:
    """Samples ``(t, value)`` over the last ``window`` seconds and their least-squares line."""

    def __init__(self, window: float, capacity: int = 4096) -> None:
        if window <= 0:
            raise ValueError("window must be positive")
        self.window = float(window)
        self.capacity = max(2, int(capacity))
        self._samples: deque[tuple[float, float]] = deque()
        self._t0 = 0.0
        self._y0 = 0.0
        self._sx = self._sy = self._sxx = self._sxy = 0.0
        self._since_recompute = 0

    def __len__(self) -> int:
        return len(self._samples)

    @property
    def samples(self) -> list[tuple[float, float]]:
        return list(self._samples)

    def add(self, t: float, value: float) -> None:
        """Add a sample (times must not go backwards) and drop samples older than the window."""
        if not (math.isfinite(t) and math.isfinite(value)):
            return
        if self._samples and t < self._samples[-1][0]:
            raise ValueError("samples must be added in time order")
        if not self._samples:
            self._t0, self._y0 = t, value
        self._samples.append((t, value))
        self._accumulate(t, value, 1.0)
        self._expire(t)
        while len(self._samples) > self.capacity:
            self._drop_oldest()
        self._since_recompute += 1
        if self._since_recompute >= self.capacity or self._reference_drifted():
            self._recompute()

    def expire(self, now: float) -> None:
        """Drop samples older than the window ending at ``now`` (when no sample arrives)."""
        self._expire(now)

    def _expire(self, now: float) -> None:
        horizon = now - self.window
        while self._samples and self._samples[0][0] <= horizon:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        t, value = self._samples.popleft()
        self._accumulate(t, value, -1.0)
        if not self._samples:
            self._sx = self._sy = self._sxx = self._sxy = 0.0

    def _accumulate(self, t: float, value: float, sign: float) -> None:
        x, y = t - self._t0, value - self._y0
        self._sx += sign * x
        self._sy += sign * y
        self._sxx += sign * x * x
        self._sxy += sign * x * y

    def _reference_drifted(self) -> bool:
        """True when the reference lies a whole window behind the oldest sample."""
        return bool(self._samples) and self._samples[0][0] - self._t0 > self.window

    def _recompute(self) -> None:
        """Re-centre on the oldest sample and sum again from scratch."""
        self._since_recompute = 0
        self._sx = self._sy = self._sxx = self._sxy = 0.0
        if not self._samples:
            return
        self._t0, self._y0 = self._samples[0]
        for t, value in self._samples:
            self._accumulate(t, value, 1.0)

    def fit(self, at: float | None = None) -> Fit | None:
        """The least-squares line, or None with fewer than two samples or no time spread."""
        n = len(self._samples)
        if n < 2:
            return None
        # Centred sums: var_x = Sxx - Sx^2/n, cov = Sxy - Sx*Sy/n (times relative to t0).
        mean_x, mean_y = self._sx / n, self._sy / n
        var_x = self._sxx - self._sx * mean_x
        if var_x <= 1e-12 * max(1.0, self._sxx):
            return None
        slope = (self._sxy - self._sx * mean_y) / var_x
        at = self._samples[-1][0] if at is None else at
        intercept = self._y0 + mean_y + slope * (at - (self._t0 + mean_x))
        return Fit(slope, intercept, at, n)

    def slope(self) -> float | None:
        fit = self.fit()
        return None if fit is None else fit.slope

    def latest(self) -> tuple[float, float] | None:
        return self._samples[-1] if self._samples else None

    def oldest(self) -> tuple[float, float] | None:
        return self._samples[0] if self._samples else None


class CounterWindow:
    """Cumulative counters sampled over a window, for rates and ratios from their deltas.

    A counter that goes down (a restarted source) starts a new series, as ``rate()`` does.
    """

    def __init__(self, window: float) -> None:
        self.window = float(window)
        self._samples: deque[tuple[float, dict[str, float]]] = deque()

    def add(self, t: float, counters: dict[str, float]) -> None:
        if self._samples and any(counters.get(k, 0.0) < v for k, v in self._samples[-1][1].items()):
            self._samples.clear()
        self._samples.append((t, dict(counters)))
        horizon = t - self.window
        # Keep one sample at or before the horizon so the delta spans the whole window.
        while len(self._samples) > 2 and self._samples[1][0] <= horizon:
            self._samples.popleft()

    def delta(self) -> tuple[float, dict[str, float]] | None:
        """(seconds spanned, increase of each counter) between the oldest and newest sample."""
        if len(self._samples) < 2:
            return None
        (t_old, old), (t_new, new) = self._samples[0], self._samples[-1]
        if t_new <= t_old:
            return None
        return t_new - t_old, {k: v - old.get(k, 0.0) for k, v in new.items()}
