"""promtool scenarios of the custom alerts of the configuration file, like the built-in ones:
input series that put what the alert reads on the firing side of its threshold (pending,
firing, escalated where it escalates), and on the quiet side.

A custom alert may read any signal or per-cache metric with any operator and threshold, so
the inputs are realised from the threshold: each kind of input reaches some values exactly
(a gauge any value, a ratio of integers k/N...) and the scenario uses the first nearby value
on the wanted side. ``==`` and ``!=`` need the exact threshold: they get the scenarios the
input can reach exactly (a gauge, a share of a memory limit), the others are left out rather
than tested against a value PromQL might compute one rounding away.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

from .. import catalog as c
from ..config.alerting import holds
from ..config.settings import BundleSettings
from ..exposition.encoders import floatToGoString
from . import promql as q
from .rule_tests import STEP, _Builder, _horizon, catalog_bounds, linear, series_labels

HISTORY = 6 * 3600.0
"""The cleanup window: a cleanup signal is steady once this much history is there."""
EXTRA_LABELS = {"result": "hit", "operation": "get", "error": "OSError", "trigger": "scheduled"}
"""The values of the labels besides ``cache`` that a counter's input series carry."""


@dataclass(frozen=True)
class Realised:
    """Input series and the value PromQL computes from them, from ``since`` on."""

    series: dict[str, str]
    value: float
    exact: bool = False
    """Whether PromQL computes exactly ``value`` (so ``==`` may rely on it)."""
    since: float = 0.0


Realise = Callable[[_Builder, float], Realised | None]


def _steps(b: _Builder, since: float = 0.0) -> int:
    return b.steps(since + _horizon(b.config))


def _gauge(metric: str) -> Realise:
    def realise(b: _Builder, value: float) -> Realised:
        key = metric + series_labels(**b.target, cache="c1")
        return Realised({key: f"{q.fmt_number(value)}x{_steps(b)}"}, value, exact=True)

    return realise


def _counter(metric: str, labels: tuple[str, ...]) -> Realise:
    def realise(b: _Builder, value: float) -> Realised | None:
        per_step = round(value * STEP)
        if per_step < 0:
            return None
        extra = {label: EXTRA_LABELS[label] for label in labels if label != "cache"}
        key = metric + series_labels(**b.target, cache="c1", **extra)
        return Realised({key: linear(10**6, per_step, _steps(b))}, per_step / STEP)

    return realise


def _lookups(b: _Builder, hits: int, misses: int, steps: int) -> dict[str, str]:
    gets = c.CACHE_GETS.name
    return {
        gets + series_labels(**b.target, cache="c1", result="hit"): linear(10**6, hits, steps),
        gets + series_labels(**b.target, cache="c1", result="miss"): linear(10**6, misses, steps),
    }


def _hit_ratio(b: _Builder, value: float) -> Realised | None:
    if not 0 <= value <= 1:
        return None
    cfg = b.config
    total = max(1000, math.ceil(cfg.hit_ratio_min_request_rate * 4 * STEP / 1000) * 1000)
    hits = round(value * total)
    # While the rate window fills, rate() extrapolates: the idle guard passes from here on.
    window = cfg.alert_rate_window
    since = max(1, math.ceil(window * cfg.hit_ratio_min_request_rate / total - 0.5)) * STEP
    series = _lookups(b, hits, total - hits, _steps(b, since))
    return Realised(series, hits / total, since=since)


def _request_rate(b: _Builder, value: float) -> Realised | None:
    per_step = round(value * STEP)
    if per_step < 0:
        return None
    return Realised(_lookups(b, per_step, 0, _steps(b)), per_step / STEP)


def _limit_ratio(b: _Builder, value: float) -> Realised | None:
    if value < 0:
        return None
    limit, steps = 10**9, _steps(b)
    held = round(value * limit)
    series = {
        c.MEMORY.name + series_labels(**b.target, cache="c1"): f"{held}x{steps}",
        c.MEMORY_LIMIT.name + series_labels(**b.target, cache="c1"): f"{limit}x{steps}",
    }
    return Realised(series, held / limit, exact=True)


def _errors(b: _Builder, value: float) -> Realised | None:
    if not 0 <= value <= 1:
        return None
    total, steps = 1000, _steps(b)
    errors = round(value * total)
    series = _lookups(b, total, 0, steps)
    for metric in (c.CACHE_PUTS.name, c.CACHE_REMOVALS.name):
        series[metric + series_labels(**b.target, cache="c1")] = f"0x{steps}"
    key = c.ERRORS.name + series_labels(**b.target, cache="c1", operation="get", error="OSError")
    series[key] = linear(1000, errors, steps)
    return Realised(series, errors / total)


def _evictions(b: _Builder, value: float) -> Realised | None:
    puts, steps = 100, _steps(b)
    evictions = round(value * puts)
    if evictions < 0:
        return None
    series = {
        c.CACHE_PUTS.name + series_labels(**b.target, cache="c1"): linear(10**6, puts, steps),
        c.CACHE_EVICTIONS.name + series_labels(**b.target, cache="c1"): linear(
            10**5, evictions, steps
        ),
    }
    return Realised(series, evictions / puts)


def _latency(b: _Builder, value: float) -> Realised | None:
    """All observations in the bucket whose p99 is nearest ``value``."""
    bounds = catalog_bounds()
    p99s = [
        (lower + (upper - lower) * 0.99, i)
        for i, (lower, upper) in enumerate(itertools.pairwise(bounds), start=1)
    ]
    p99, index = min(p99s, key=lambda pair: abs(pair[0] - value))
    bucket, steps = c.OPERATION_DURATION.name + "_bucket", _steps(b)
    series = {}
    for le, count in ((bounds[index - 1], 0), (bounds[index], 100), (float("inf"), 100)):
        labels = series_labels(**b.target, cache="c1", operation="get", le=_le(le))
        series[bucket + labels] = linear(10**6 if count else 0, count, steps)
    return Realised(series, p99)


def _le(bound: float) -> str:
    return floatToGoString(bound)


def _full_in(b: _Builder, value: float) -> Realised | None:
    """Memory and its limit grow alike (one byte a second): always ``value`` seconds away."""
    seconds = round(value)
    if seconds < 0:
        return None
    steps, start = _steps(b), 10**8
    series = {
        c.MEMORY.name + series_labels(**b.target, cache="c1"): linear(start, STEP, steps),
        c.MEMORY_LIMIT.name + series_labels(**b.target, cache="c1"): linear(
            start + seconds, STEP, steps
        ),
    }
    return Realised(series, float(seconds), since=STEP)


def _overdue(b: _Builder, value: float) -> Realised | None:
    """A cleanup a minute for the whole window, the last one ``value`` intervals ago."""
    late = round(value * STEP)
    if late < 0:
        return None
    steps = _steps(b, HISTORY)
    stamp = c.LAST_CLEANUP.name + series_labels(**b.target, cache="c1")
    counter = c.CLEANUPS.name + series_labels(**b.target, cache="c1", trigger="scheduled")
    # No cleanup timestamp before the window is full, so nothing holds before then.
    history = round(HISTORY / STEP)
    stamps = f"_x{history} " + linear(HISTORY - late, STEP, steps - history)  # _xN: N gaps
    series = {counter: linear(1000, 1, steps), stamp: stamps}
    return Realised(series, late / STEP, since=HISTORY)


SIGNALS: dict[str, Realise] = {
    "hit_ratio": _hit_ratio,
    "request_rate": _request_rate,
    "memory_bytes": _gauge(c.MEMORY.name),
    "memory_limit_ratio": _limit_ratio,
    "memory_full_seconds": _full_in,
    "error_ratio": _errors,
    "eviction_ratio": _evictions,
    "latency_p99_seconds": _latency,
    "cleanup_overdue_factor": _overdue,
}


def realiser(reads: str) -> Realise:
    if reads in SIGNALS:
        return SIGNALS[reads]
    spec = c.BY_NAME[reads]
    if spec.type == "counter":
        return _counter(spec.name, spec.labels)
    return _gauge(spec.name)


def _candidates(threshold: float) -> list[float]:
    """Values near ``threshold`` on both sides, the threshold first."""
    step = abs(threshold) / 2 or 0.5
    near = [threshold, threshold + step, threshold - step, threshold + 1, threshold - 1]
    return [*near, threshold * 2, threshold / 2, 0.0, 1.0, 2 * threshold + 1]


def _pick(b: _Builder, threshold: float, fires: bool) -> Realised | None:
    """The first realised input on the wanted side of the threshold (exactly, where the
    operator needs equality)."""
    realise = realiser(b.d.signal)
    exact_needed = (b.d.operator == "==") == fires and b.d.operator in ("==", "!=")
    for wanted in _candidates(threshold):
        found = realise(b, wanted)
        if found is None or (exact_needed and not found.exact):
            continue
        if not found.exact and math.isclose(found.value, threshold, abs_tol=1e-12):
            continue  # on the boundary, where one rounding decides
        if holds(found.value, b.d.operator, threshold) == fires:
            return found
    return None


def custom_scenarios(b: _Builder, cfg: BundleSettings) -> None:
    """A firing and a quiet scenario for one custom alert, where its input can reach them."""
    (threshold,) = b.d.thresholds
    labels = dict(b.alerted)
    if b.d.signal == "latency_p99_seconds":
        labels["operation"] = "get"
    words = f"{b.d.signal} {b.d.operator} {q.fmt_number(threshold.value)}"
    fire = _pick(b, threshold.value, True)
    if fire is not None:
        b.add(
            f"fires at {q.fmt_number(fire.value)} ({words})",
            fire.series,
            fire.value,
            labels,
            (threshold.severity,),
            fire.since,
        )
    quiet = _pick(b, threshold.value, False)
    if quiet is not None:
        at = quiet.since + b.escalate + 2 * STEP
        b.quiet(f"quiet at {q.fmt_number(quiet.value)} (not {words})", quiet.series, at)
