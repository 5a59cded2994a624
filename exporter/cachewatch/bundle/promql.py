"""The PromQL vocabulary shared by the rule files and the dashboards.

Recording rules pre-compute the per-cache ratios and quantiles once, so that alerts and
dashboard panels read the same series and cannot disagree.
"""

from __future__ import annotations

from .. import catalog as c
from ..config.settings import AlertSettings
from ..config.values import format_duration, parse_duration

CLEANUP_WINDOW = "6h"
"""Window over which a cache's usual cleanup interval is estimated."""

QUANTILES = (0.5, 0.95, 0.99)


def fmt_number(value: float) -> str:
    """A threshold as PromQL spells it (no trailing ``.0``)."""
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


def _rate(metric: str, window: str, by: str = "cache") -> str:
    return f"sum by ({by}) (rate({metric}[{window}]))"


class Vocabulary:
    """Recording rule names (``level:metric:operations``) and expressions for one rate
    window (``alerts.rate-window``), so a changed window renames and rewrites them all."""

    def __init__(self, rate_window: str = "5m") -> None:
        self.window = w = rate_window
        self.REQUESTS = f"cache:requests:rate{w}"
        self.HITS = f"cache:hits:rate{w}"
        self.PUTS = f"cache:puts:rate{w}"
        self.OPERATIONS = f"cache:operations:rate{w}"
        self.HIT_RATIO = f"cache:hit_ratio:rate{w}"
        self.ERROR_RATIO = f"cache:error_ratio:rate{w}"
        self.EVICTION_RATIO = f"cache:eviction_ratio:rate{w}"
        self.MEMORY_LIMIT_RATIO = "cache:memory_limit_ratio"
        self.CLEANUP_OVERDUE = "cache:cleanup_overdue_factor"

    def latency_quantile(self, q: float) -> str:
        return f"cache:operation_latency_seconds:p{round(q * 100)}_rate{self.window}"

    def recording_rules(self) -> list[tuple[str, str]]:
        """(record, expr) for every recording rule, in dependency order."""
        w = self.window
        gets, puts, removals = c.CACHE_GETS.name, c.CACHE_PUTS.name, c.CACHE_REMOVALS.name
        memory, limit = c.MEMORY.name, c.MEMORY_LIMIT.name
        bucket = f"{c.OPERATION_DURATION.name}_bucket"
        ops = self.OPERATIONS
        rules = [
            (self.REQUESTS, _rate(gets, w)),
            (self.HITS, _rate(f'{gets}{{result="hit"}}', w)),
            (self.PUTS, _rate(puts, w)),
            (ops, f"{self.REQUESTS} + {self.PUTS} + {_rate(removals, w)}"),
            (self.HIT_RATIO, f"{self.HITS} / ({self.REQUESTS} > 0)"),
            # Caches without a single error have no error series: count them as 0, not absent.
            (self.ERROR_RATIO, f"({_rate(c.ERRORS.name, w)} or 0 * {ops}) / ({ops} > 0)"),
            (self.EVICTION_RATIO, f"{_rate(c.CACHE_EVICTIONS.name, w)} / ({self.PUTS} > 0)"),
        ]
        for q in QUANTILES:
            by = _rate(bucket, w, "cache, operation, le")
            rules.append((self.latency_quantile(q), f"histogram_quantile({q}, {by})"))
        rules += [
            (self.MEMORY_LIMIT_RATIO, f"max by (cache) ({memory} / ({limit} > 0))"),
            (self.CLEANUP_OVERDUE, self.cleanup_overdue_expr()),
        ]
        return rules

    def cleanup_overdue_expr(self) -> str:
        """Time since the last cleanup over the usual interval (window / runs in it).

        The alert evaluates this itself instead of reading the recording rule: the value
        grows every second, and a rule in another group would see it one interval late.
        """
        cleanup_seconds = fmt_number(parse_duration(CLEANUP_WINDOW))
        return (
            f"(time() - max by (cache) ({c.LAST_CLEANUP.name})) / ({cleanup_seconds} / "
            f"clamp_min(sum by (cache) (increase({c.CLEANUPS.name}[{CLEANUP_WINDOW}])), 1))"
        )


def vocabulary(config: AlertSettings) -> Vocabulary:
    """The names and expressions for ``config``'s rate window (as the exporter uses it)."""
    return Vocabulary(format_duration(config.alert_rate_window))
