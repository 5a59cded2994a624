"""The alerts cachewatch knows: names, severities, thresholds and timings, from the alert
settings, and the custom alerts the configuration file defines.

The exporter's own alert evaluation, the generated Prometheus rules, the dashboards'
threshold lines and ``cachewatch_alert_threshold`` all read this module, so a threshold
changed in one place (YAML, environment, flag) changes everywhere after ``generate``; a
threshold changed at run time reaches the rules through ``cachewatch_alert_threshold``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .. import catalog
from ..catalog import SIGNALS
from ..config.alerting import CustomAlert
from ..config.settings import AlertSettings, ConfigError

WARNING, CRITICAL = "warning", "critical"
MB = 1024 * 1024
OPERATOR_WORDS = {
    ">": "above", ">=": "at or above", "<": "below", "<=": "at or below",
    "==": "equal to", "!=": "other than",
}  # fmt: skip

__all__ = ["CRITICAL", "SIGNALS", "WARNING", "AlertDefinition", "Threshold", "alert_definitions"]


@dataclass(frozen=True)
class Threshold:
    severity: str
    value: float
    for_seconds: float
    key: str = ""
    """What a cache's override names: the threshold setting's field (``hit_ratio_warning``),
    or a custom alert's name."""
    scale: float = 1.0
    """The override's value times ``scale`` is the threshold in the signal's unit (MB to
    bytes for the memory thresholds)."""


@dataclass(frozen=True)
class AlertDefinition:
    """One alert: it fires while ``signal`` ``operator`` a threshold holds for its ``for``."""

    name: str
    summary: str
    description: str
    signal: str
    """A signal (``catalog.SIGNALS``) or, for a custom alert, a catalogued metric."""
    unit: str
    operator: str
    thresholds: tuple[Threshold, ...]
    per_cache: bool = True
    escalates: bool = False
    custom: CustomAlert | None = None
    """The definition in the configuration file, for a custom alert."""

    @property
    def above(self) -> bool:
        """Whether it fires above its threshold (the bad side is up)."""
        return self.operator in (">", ">=")

    @property
    def relation(self) -> str:
        """The operator in words: ``above``, ``at or below``..."""
        return OPERATOR_WORDS[self.operator]

    @property
    def anchor(self) -> str:
        """The runbook section of this alert."""
        return self.name.lower()

    def threshold(self, severity: str) -> Threshold | None:
        return next((t for t in self.thresholds if t.severity == severity), None)


def alert_definitions(config: AlertSettings) -> list[AlertDefinition]:
    """Every alert with the thresholds and timings of ``config``: the built-in ones, then the
    custom ones. A custom alert named like a built-in one is a ConfigError."""
    builtin = builtin_definitions(config)
    names = {d.name for d in builtin}
    for alert in config.custom_alerts:
        if alert.name in names:
            raise ConfigError(f"{alert.origin}.alert: {alert.name!r} is a built-in alert")
    return builtin + [custom_definition(alert, config) for alert in config.custom_alerts]


def builtin_definitions(config: AlertSettings) -> list[AlertDefinition]:
    """The alerts cachewatch ships, with the thresholds and timings of ``config``."""
    wait = config.alert_for_seconds
    return [
        AlertDefinition(
            "CacheHitRatioLow",
            "Cache hit ratio is low",
            "The share of lookups answered from the cache fell below the threshold while the "
            f"cache serves at least {config.hit_ratio_min_request_rate:g} lookups per second.",
            "hit_ratio",
            "ratio",
            "<",
            (
                Threshold(WARNING, config.hit_ratio_warning, wait, "hit_ratio_warning"),
                Threshold(CRITICAL, config.hit_ratio_critical, wait, "hit_ratio_critical"),
            ),
            escalates=True,
        ),
        AlertDefinition(
            "CacheMemoryHigh",
            "Cache memory is high",
            "The memory held by the cache is above the threshold.",
            "memory_bytes",
            "bytes",
            ">",
            (
                Threshold(WARNING, config.memory_warning_mb * MB, wait, "memory_warning_mb", MB),
                Threshold(CRITICAL, config.memory_critical_mb * MB, wait, "memory_critical_mb", MB),
            ),
            escalates=True,
        ),
        AlertDefinition(
            "CacheMemoryNearLimit",
            "Cache memory is near its limit",
            "The cache holds more than the threshold share of its configured memory limit.",
            "memory_limit_ratio",
            "ratio",
            ">",
            (Threshold(WARNING, config.memory_near_limit_ratio, wait, "memory_near_limit_ratio"),),
            escalates=True,
        ),
        AlertDefinition(
            "CacheMemoryFullSoon",
            "Cache memory will reach its limit soon",
            "At the current growth rate the cache reaches its memory limit within the threshold.",
            "memory_full_seconds",
            "seconds",
            "<",
            (
                Threshold(
                    WARNING, config.memory_full_soon_seconds, wait, "memory_full_soon_seconds"
                ),
            ),
            escalates=True,
        ),
        AlertDefinition(
            "CacheErrorRateHigh",
            "Cache operations are failing",
            "The share of failed cache operations is above the threshold.",
            "error_ratio",
            "ratio",
            ">",
            (
                Threshold(WARNING, config.error_ratio_warning, wait, "error_ratio_warning"),
                Threshold(CRITICAL, config.error_ratio_critical, wait, "error_ratio_critical"),
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
            ">",
            (Threshold(WARNING, config.eviction_ratio_warning, wait, "eviction_ratio_warning"),),
            escalates=True,
        ),
        AlertDefinition(
            "CacheLatencyHigh",
            "Cache operations are slow",
            "The 99th percentile latency of a cache operation is above the threshold.",
            "latency_p99_seconds",
            "seconds",
            ">",
            (
                Threshold(
                    WARNING, config.latency_p99_warning_seconds, wait, "latency_p99_warning_seconds"
                ),
            ),
            escalates=True,
        ),
        AlertDefinition(
            "CacheCleanupStalled",
            "Cache cleanup has stalled",
            "No cleanup ran for the threshold times the cache's usual cleanup interval.",
            "cleanup_overdue_factor",
            "factor",
            ">",
            (Threshold(WARNING, config.cleanup_stalled_factor, wait, "cleanup_stalled_factor"),),
            escalates=True,
        ),
        AlertDefinition(
            "CacheSourceDown",
            "A cache source is unreachable",
            "The exporter cannot read a source (such as Redis).",
            "source_up",
            "bool",
            "<",
            (Threshold(CRITICAL, 1.0, min(wait, 60.0)),),
            per_cache=False,
        ),
    ]


def unit_of(reads: str) -> str:
    """How a signal or a catalogued metric is shown: a counter is read as its rate."""
    if reads in SIGNALS:
        return SIGNALS[reads].unit
    spec = catalog.BY_NAME[reads]
    if spec.type == "counter":
        return "per_second"
    if spec is catalog.HIT_RATIO:
        return "ratio"
    if spec.unit in ("bytes", "seconds") and not spec.name.endswith("_timestamp_seconds"):
        return spec.unit
    return "factor"


def meaning_of(reads: str) -> str:
    """What a signal or a catalogued metric says, as a sentence."""
    if reads in SIGNALS:
        text = SIGNALS[reads].meaning
        return text[0].upper() + text[1:] + "."
    spec = catalog.BY_NAME[reads]
    if spec.type == "counter":
        return f"{spec.help.rstrip('.')}, per second over the rate window."
    return spec.help


def custom_definition(alert: CustomAlert, config: AlertSettings) -> AlertDefinition:
    """A custom alert of the configuration file as a definition like the built-in ones."""
    wait = config.alert_for_seconds if alert.for_seconds is None else alert.for_seconds
    relation = OPERATOR_WORDS[alert.operator]
    return AlertDefinition(
        alert.name,
        alert.summary or f"{alert.reads} is {relation} its threshold",
        alert.description or meaning_of(alert.reads),
        alert.reads,
        unit_of(alert.reads),
        alert.operator,
        (Threshold(alert.severity, alert.threshold, wait, alert.name),),
        escalates=alert.escalation,
        custom=alert,
    )


def by_name(definitions: Iterable[AlertDefinition]) -> dict[str, AlertDefinition]:
    return {d.name: d for d in definitions}
