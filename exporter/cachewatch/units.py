"""How numbers are shown to people: percentages, bytes, durations, rates, ratio trends.

One spelling for the advice's messages, the pages and the terminal report, so that the same
value reads the same everywhere. (Prometheus-valid durations for configuration are
``config.values.format_duration``; this is for reading, not for parsing back.)
"""

from __future__ import annotations

KIB, MIB, GIB = 1024, 1024**2, 1024**3
NONE = "-"
"""What a value that is not known (yet) shows as."""


def percent(ratio: float | None, digits: int = 1) -> str:
    """0.942 -> ``94.2%``."""
    return NONE if ratio is None else f"{100 * ratio:.{digits}f}%"


def size(value: float | None, *, compact: bool = False) -> str:
    """Bytes in IEC units: ``12.3 MiB``, or ``12.3M`` when ``compact`` (for tables)."""
    if value is None:
        return NONE
    for unit, scale in (("G", GIB), ("M", MIB), ("K", KIB)):
        if abs(value) >= scale:
            return f"{value / scale:.1f}{unit}" if compact else f"{value / scale:.1f} {unit}iB"
    return f"{value:.0f}B" if compact else f"{value:.0f} B"


def duration(seconds: float | None) -> str:
    """A length of time at the precision a person reads it: ``850us``, ``2.5ms``, ``120ms``,
    ``45s``, ``90m``, ``2.5h``, ``3.0d``."""
    if seconds is None:
        return NONE
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f}us"
    if seconds < 0.01:
        return f"{seconds * 1e3:.1f}ms"
    if seconds < 1:
        return f"{seconds * 1e3:.0f}ms"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def clock(seconds: float) -> str:
    """Elapsed time as on a stopwatch: ``1:05``, ``1:02:05``."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def number(value: float | None, digits: int = 1) -> str:
    """``1,234.5``."""
    return NONE if value is None else f"{value:,.{digits}f}"


def points_per_hour(change_per_hour: float | None) -> str:
    """A ratio's trend in percentage points per hour: 0.125/h -> ``+12.5 pts/h``."""
    return NONE if change_per_hour is None else f"{100 * change_per_hour:+.1f} pts/h"
