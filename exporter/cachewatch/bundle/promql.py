"""The PromQL vocabulary shared by the rule files and the dashboards.

Recording rules pre-compute the per-cache ratios and quantiles once, so that alerts and
dashboard panels read the same series and cannot disagree.
"""

from __future__ import annotations

from .. import catalog as c
from ..config import parse_duration

RATE_WINDOW = "5m"
"""Window of every rate in the recording rules (4+ scrapes at the usual 15 s to 1 m)."""

CLEANUP_WINDOW = "6h"
"""Window over which a cache's usual cleanup interval is estimated."""

QUANTILES = (0.5, 0.95, 0.99)


def fmt_duration(seconds: float) -> str:
    """Seconds as a Prometheus duration (``300`` -> ``5m``, ``5400`` -> ``1h30m``)."""
    millis = round(seconds * 1000)
    if millis % 1000:
        return f"{millis}ms"
    rest = millis // 1000
    if rest == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)


def fmt_number(value: float) -> str:
    """A threshold as PromQL spells it (no trailing ``.0``)."""
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


def _rate(metric: str, by: str = "cache") -> str:
    return f"sum by ({by}) (rate({metric}[{RATE_WINDOW}]))"


# --- recording rule names (level:metric:operations) ----------------------------------------
REQUESTS = f"cache:requests:rate{RATE_WINDOW}"
HITS = f"cache:hits:rate{RATE_WINDOW}"
PUTS = f"cache:puts:rate{RATE_WINDOW}"
OPERATIONS = f"cache:operations:rate{RATE_WINDOW}"
HIT_RATIO = f"cache:hit_ratio:rate{RATE_WINDOW}"
ERROR_RATIO = f"cache:error_ratio:rate{RATE_WINDOW}"
EVICTION_RATIO = f"cache:eviction_ratio:rate{RATE_WINDOW}"
MEMORY_LIMIT_RATIO = "cache:memory_limit_ratio"
CLEANUP_OVERDUE = "cache:cleanup_overdue_factor"


def latency_quantile(q: float) -> str:
    return f"cache:operation_latency_seconds:p{round(q * 100)}_rate{RATE_WINDOW}"


def recording_rules() -> list[tuple[str, str]]:
    """(record, expr) for every recording rule, in dependency order."""
    gets, puts, removals = c.CACHE_GETS.name, c.CACHE_PUTS.name, c.CACHE_REMOVALS.name
    memory, limit = c.MEMORY.name, c.MEMORY_LIMIT.name
    bucket = f"{c.OPERATION_DURATION.name}_bucket"
    rules = [
        (REQUESTS, _rate(gets)),
        (HITS, _rate(f'{gets}{{result="hit"}}')),
        (PUTS, _rate(puts)),
        (OPERATIONS, f"{REQUESTS} + {PUTS} + {_rate(removals)}"),
        (HIT_RATIO, f"{HITS} / ({REQUESTS} > 0)"),
        # Caches without a single error have no error series: count them as 0, not absent.
        (
            ERROR_RATIO,
            f"({_rate(c.ERRORS.name)} or 0 * {OPERATIONS}) / ({OPERATIONS} > 0)",
        ),
        (EVICTION_RATIO, f"{_rate(c.CACHE_EVICTIONS.name)} / ({PUTS} > 0)"),
    ]
    for q in QUANTILES:
        rules.append(
            (
                latency_quantile(q),
                f"histogram_quantile({q}, {_rate(bucket, 'cache, operation, le')})",
            )
        )
    rules += [
        (MEMORY_LIMIT_RATIO, f"max by (cache) ({memory} / ({limit} > 0))"),
        (
            CLEANUP_OVERDUE,
            f"(time() - max by (cache) ({c.LAST_CLEANUP.name})) / ({_cleanup_seconds()} / "
            f"clamp_min(sum by (cache) (increase({c.CLEANUPS.name}[{CLEANUP_WINDOW}])), 1))",
        ),
    ]
    return rules


def _cleanup_seconds() -> str:
    return fmt_number(parse_duration(CLEANUP_WINDOW))
