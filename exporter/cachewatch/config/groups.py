"""The settings groups: each part of the program is handed the group it needs, never the
whole ``Config``, so that what a module depends on is visible in its signature.

A group's fields carry the names of the ``Config`` fields they come from (``group`` copies
them), and the defaults come from the declarations: nothing is declared twice.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TypeVar

from ..secret import Secret, redact
from .redisurl import CachePrefix, RedisAddress
from .settings import Config

G = TypeVar("G")
DEFAULTS = Config()


def group(cls: type[G], config: Config) -> G:
    """The ``cls`` group of ``config``: its fields copied by name."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    return cls(**{f.name: getattr(config, f.name) for f in fields})


@dataclass(frozen=True)
class AlertSettings:
    """Thresholds and timings of the alerts: the exporter's own alert states, the generated
    rules and the dashboards' threshold lines all read these."""

    hit_ratio_warning: float = DEFAULTS.hit_ratio_warning
    hit_ratio_critical: float = DEFAULTS.hit_ratio_critical
    hit_ratio_min_request_rate: float = DEFAULTS.hit_ratio_min_request_rate
    memory_warning_mb: float = DEFAULTS.memory_warning_mb
    memory_critical_mb: float = DEFAULTS.memory_critical_mb
    memory_near_limit_ratio: float = DEFAULTS.memory_near_limit_ratio
    memory_full_soon_seconds: float = DEFAULTS.memory_full_soon_seconds
    error_ratio_warning: float = DEFAULTS.error_ratio_warning
    error_ratio_critical: float = DEFAULTS.error_ratio_critical
    eviction_ratio_warning: float = DEFAULTS.eviction_ratio_warning
    latency_p99_warning_seconds: float = DEFAULTS.latency_p99_warning_seconds
    cleanup_stalled_factor: float = DEFAULTS.cleanup_stalled_factor
    alert_for_seconds: float = DEFAULTS.alert_for_seconds
    alert_escalate_after_seconds: float = DEFAULTS.alert_escalate_after_seconds
    alert_notify_cooldown_seconds: float = DEFAULTS.alert_notify_cooldown_seconds
    alert_rate_window: float = DEFAULTS.alert_rate_window
    trend_window: float = DEFAULTS.trend_window
    """The window of the trend fits, and so of the memory-full forecast an alert reads."""


@dataclass(frozen=True)
class AnalysisSettings(AlertSettings):
    """What the analysis of a running process needs: sampling, alerts, health."""

    sample_interval: float = DEFAULTS.sample_interval
    health_fail_on_critical: bool = DEFAULTS.health_fail_on_critical


@dataclass(frozen=True)
class BundleSettings(AlertSettings):
    """What the generators of rules and dashboards need: the alerts and the links to write."""

    grafana_url: str = DEFAULTS.grafana_url
    runbook_url: str = DEFAULTS.runbook_url


@dataclass(frozen=True)
class TracingOptions:
    """cachewatch's own tracing switches (the standard ``OTEL_*`` variables say the rest)."""

    tracing_record_keys: bool = DEFAULTS.tracing_record_keys
    otel_metrics_bridge: bool = DEFAULTS.otel_metrics_bridge
    otel_metrics_scope_labels: bool = DEFAULTS.otel_metrics_scope_labels


@dataclass(frozen=True)
class DemoSettings:
    duration: float = DEFAULTS.duration
    seed: int = DEFAULTS.seed
    demo_speed: float = DEFAULTS.demo_speed


@dataclass(frozen=True)
class RedisSettings:
    """How to reach one Redis server and which logical caches to count in it. Built from the
    configuration by ``files.redis_settings`` (which reads the password file) or from a probe
    target; the source never sees the configuration itself."""

    address: RedisAddress
    caches: tuple[CachePrefix, ...] = ()
    username: str | None = None
    password: Secret | None = None
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    connect_timeout: float = DEFAULTS.redis_connect_timeout
    socket_timeout: float = DEFAULTS.redis_socket_timeout
    census_interval: float = DEFAULTS.redis_census_interval
    census_keys: int = DEFAULTS.redis_census_keys
    census_samples: int = DEFAULTS.redis_census_samples

    def redact(self, text: str) -> str:
        """``text`` with every password this source knows replaced by ``***``."""
        return redact(text, [self.password, self.address.password])
