"""The PromQL vocabulary shared by the rule files and the dashboards.

Recording rules pre-compute the per-cache ratios and quantiles once, so that alerts and
dashboard panels read the same series and cannot disagree. Every aggregation keeps the
group labels (``bundle.group-labels``: ``job`` by default, ``cluster``, ``namespace``...), so
two services with a cache of the same name, or one service in two clusters, never merge;
signals that belong to one process (memory, entries, the forecast) keep ``instance`` too.
"""

from __future__ import annotations

from .. import catalog as c
from ..config.settings import BundleSettings
from ..config.values import format_duration, parse_duration

CLEANUP_WINDOW = "6h"
"""Window over which a cache's usual cleanup interval is estimated."""

QUANTILES = (0.5, 0.95, 0.99)


def fmt_number(value: float) -> str:
    """A threshold as PromQL spells it (no trailing ``.0``)."""
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


class Vocabulary:
    """Recording rule names (``level:metric:operations``) and expressions for one rate
    window (``alerts.rate-window``) and one set of group labels, so a changed window or
    grouping renames and rewrites them all."""

    def __init__(self, rate_window: str = "5m", group_labels: tuple[str, ...] = ("job",)) -> None:
        self.window = w = rate_window
        self.group_labels = group_labels
        self.SERVICE = ", ".join((*group_labels, "cache"))
        """``by (...)`` of a signal of the whole service: all its replicas together."""
        self.PROCESS = ", ".join((*group_labels, "instance", "cache"))
        """``by (...)`` of a signal of one process: one replica's memory or entries."""
        self.REQUESTS = f"cache:requests:rate{w}"
        self.HITS = f"cache:hits:rate{w}"
        self.PUTS = f"cache:puts:rate{w}"
        self.OPERATIONS = f"cache:operations:rate{w}"
        self.HIT_RATIO = f"cache:hit_ratio:rate{w}"
        self.ERROR_RATIO = f"cache:error_ratio:rate{w}"
        self.EVICTION_RATIO = f"cache:eviction_ratio:rate{w}"
        self.MEMORY_LIMIT_RATIO = "cache:memory_limit_ratio"
        self.CLEANUP_OVERDUE = "cache:cleanup_overdue_factor"

    def by(self, *extra: str) -> str:
        """The service's grouping plus ``extra`` labels (``operation``, ``le``...)."""
        return ", ".join((*self.group_labels, "cache", *extra))

    def rate(self, metric: str, window: str | None = None, *extra: str) -> str:
        return f"sum by ({self.by(*extra)}) (rate({metric}[{window or self.window}]))"

    def latency_quantile(self, q: float) -> str:
        return f"cache:operation_latency_seconds:p{round(q * 100)}_rate{self.window}"

    def recording_rules(self) -> list[tuple[str, str]]:
        """(record, expr) for every recording rule, in dependency order."""
        gets, puts, removals = c.CACHE_GETS.name, c.CACHE_PUTS.name, c.CACHE_REMOVALS.name
        memory, limit = c.MEMORY.name, c.MEMORY_LIMIT.name
        bucket = f"{c.OPERATION_DURATION.name}_bucket"
        ops = self.OPERATIONS
        rules = [
            (self.REQUESTS, self.rate(gets)),
            (self.HITS, self.rate(f'{gets}{{result="hit"}}')),
            (self.PUTS, self.rate(puts)),
            (ops, f"{self.REQUESTS} + {self.PUTS} + {self.rate(removals)}"),
            (self.HIT_RATIO, f"{self.HITS} / ({self.REQUESTS} > 0)"),
            # Caches without a single error have no error series: count them as 0, not absent.
            (self.ERROR_RATIO, f"({self.rate(c.ERRORS.name)} or 0 * {ops}) / ({ops} > 0)"),
            (
                self.EVICTION_RATIO,
                f"{self.rate(c.CACHE_EVICTIONS.name)} / ({self.PUTS} > 0)",
            ),
        ]
        for q in QUANTILES:
            by = self.rate(bucket, None, "operation", "le")
            rules.append((self.latency_quantile(q), f"histogram_quantile({q}, {by})"))
        rules += [
            (self.MEMORY_LIMIT_RATIO, f"max by ({self.PROCESS}) ({memory} / ({limit} > 0))"),
            (self.CLEANUP_OVERDUE, self.cleanup_overdue_expr()),
        ]
        return rules

    def cleanup_overdue_expr(self) -> str:
        """Time since the service's last cleanup over its usual interval (window / runs).

        The alert evaluates this itself instead of reading the recording rule: the value
        grows every second, and a rule in another group would see it one interval late.
        """
        cleanup_seconds = fmt_number(parse_duration(CLEANUP_WINDOW))
        return (
            f"(time() - max by ({self.SERVICE}) ({c.LAST_CLEANUP.name})) / ({cleanup_seconds} / "
            f"clamp_min(sum by ({self.SERVICE}) (increase({c.CLEANUPS.name}[{CLEANUP_WINDOW}]))"
            ", 1))"
        )


def vocabulary(config: BundleSettings) -> Vocabulary:
    """The names and expressions for ``config``'s rate window and group labels."""
    return Vocabulary(format_duration(config.alert_rate_window), config.group_labels)
