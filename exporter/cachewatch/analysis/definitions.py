"""The alerts cachewatch knows: names, severities, thresholds and timings, from the alert
settings.

The exporter's own alert evaluation, the generated Prometheus rules, the dashboards'
threshold lines and ``cachewatch_alert_threshold`` all read this module, so a threshold
changed in one place (YAML, environment, flag) changes everywhere after ``generate``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config.settings import AlertSettings

WARNING, CRITICAL = "warning", "critical"


@dataclass(frozen=True)
class Threshold:
    severity: str
    value: float
    for_seconds: float


@dataclass(frozen=True)
class AlertDefinition:
    """One alert. ``above`` says whether it fires above (True) or below (False) the value."""

    name: str
    summary: str
    description: str
    signal: str
    unit: str
    above: bool
    thresholds: tuple[Threshold, ...]
    per_cache: bool = True
    escalates: bool = False

    @property
    def anchor(self) -> str:
        """The runbook section of this alert."""
        return self.name.lower()


def alert_definitions(config: AlertSettings) -> list[AlertDefinition]:
    """Every alert with the thresholds and timings of ``config``."""
    wait = config.alert_for_seconds
    mb = 1024 * 1024
    return [
        AlertDefinition(
            "CacheHitRatioLow",
            "Cache hit ratio is low",
            "The share of lookups answered from the cache fell below the threshold while the "
            f"cache serves at least {config.hit_ratio_min_request_rate:g} lookups per second.",
            "hit_ratio",
            "ratio",
            False,
            (
                Threshold(WARNING, config.hit_ratio_warning, wait),
                Threshold(CRITICAL, config.hit_ratio_critical, wait),
            ),
            escalates=True,
        ),
        AlertDefinition(
            "CacheMemoryHigh",
            "Cache memory is high",
            "The memory held by the cache is above the threshold.",
            "memory_bytes",
            "bytes",
            True,
            (
                Threshold(WARNING, config.memory_warning_mb * mb, wait),
                Threshold(CRITICAL, config.memory_critical_mb * mb, wait),
            ),
            escalates=True,
        ),
        AlertDefinition(
            "CacheMemoryNearLimit",
            "Cache memory is near its limit",
            "The cache holds more than the threshold share of its configured memory limit.",
            "memory_limit_ratio",
            "ratio",
            True,
            (Threshold(WARNING, config.memory_near_limit_ratio, wait),),
            escalates=True,
        ),
        AlertDefinition(
            "CacheMemoryFullSoon",
            "Cache memory will reach its limit soon",
            "At the current growth rate the cache reaches its memory limit within the threshold.",
            "memory_full_seconds",
            "seconds",
            False,
            (Threshold(WARNING, config.memory_full_soon_seconds, wait),),
            escalates=True,
        ),
        AlertDefinition(
            "CacheErrorRateHigh",
            "Cache operations are failing",
            "The share of failed cache operations is above the threshold.",
            "error_ratio",
            "ratio",
            True,
            (
                Threshold(WARNING, config.error_ratio_warning, wait),
                Threshold(CRITICAL, config.error_ratio_critical, wait),
            ),
            escalates=True,
        ),
        AlertDefinition(
            "CacheEvictionRateHigh",
            "Cache evicts a large share of what it stores",
            "Evictions per put are above the threshold: the cache is too small for its working "
            "set.",
            "eviction_ratio",
            "ratio",
            True,
            (Threshold(WARNING, config.eviction_ratio_warning, wait),),
            escalates=True,
        ),
        AlertDefinition(
            "CacheLatencyHigh",
            "Cache operations are slow",
            "The 99th percentile latency of a cache operation is above the threshold.",
            "latency_p99_seconds",
            "seconds",
            True,
            (Threshold(WARNING, config.latency_p99_warning_seconds, wait),),
            escalates=True,
        ),
        AlertDefinition(
            "CacheCleanupStalled",
            "Cache cleanup has stalled",
            "No cleanup ran for the threshold times the cache's usual cleanup interval.",
            "cleanup_overdue_factor",
            "factor",
            True,
            (Threshold(WARNING, config.cleanup_stalled_factor, wait),),
            escalates=True,
        ),
        AlertDefinition(
            "CacheSourceDown",
            "A cache source is unreachable",
            "The exporter cannot read a source (such as Redis).",
            "source_up",
            "bool",
            False,
            (Threshold(CRITICAL, 1.0, min(wait, 60.0)),),
            per_cache=False,
        ),
    ]


SIGNALS: dict[str, str] = {
    "hit_ratio": "hits / (hits + misses) over the rate window",
    "memory_bytes": "memory held by the cache now",
    "memory_limit_ratio": "memory / memory limit now",
    "memory_full_seconds": "(limit - memory now) / least-squares memory slope over the trend "
    "window, when growing",
    "error_ratio": "errors / (lookups + puts + removals) over the rate window",
    "eviction_ratio": "evictions / puts over the rate window",
    "latency_p99_seconds": "p99 of the operation latency histogram's increase over the rate "
    "window (the slowest operation)",
    "cleanup_overdue_factor": "seconds since the last cleanup / the usual interval between "
    "cleanups",
    "source_up": "1 when the source's last poll worked",
}
"""What each ``AlertDefinition.signal`` means, as the exporter evaluates it; the generated
rules compute the same quantities in PromQL."""
