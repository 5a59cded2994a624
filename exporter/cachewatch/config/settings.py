"""Every setting of cachewatch, declared once: flag, environment variable, YAML key, parser,
default and help, as a field of ``Config``. The CLI, ``check-config`` and the configuration
reference are derived from these declarations; the groups at the end hand each part of
the program only the settings it needs.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ..secret import Secret
from .redisurl import (
    CachePrefix,
    RedisAddress,
    parse_cache_prefix,
    parse_redis_address,
    parse_sentinel_address,
    parse_sentinel_master,
)
from .values import (
    ListenAddress,
    choice,
    format_duration,
    parse_bool,
    parse_census_keys,
    parse_census_samples,
    parse_duration,
    parse_group_labels,
    parse_http_url,
    parse_int,
    parse_link_url,
    parse_listen_address,
    parse_non_negative,
    parse_number,
    parse_positive_duration,
    parse_positive_int,
    parse_ratio,
)

if TYPE_CHECKING:
    from .alerting import CustomAlert, ThresholdOverride

ENV_PREFIX = "CACHEWATCH_"
DEFAULT_PORT = 10287


class ConfigError(ValueError):
    """A bad setting: the message names the setting and says what is wrong, in one line."""


SERVICE_COMMANDS = ("serve", "demo")
"""Settings of the cachewatch processes (they bind an address and log)."""
PROCESS_COMMANDS = (*SERVICE_COMMANDS, "embedded")
"""Settings of every running cachewatch; ``embedded`` is the library inside an application,
which reads the environment only (``load_config("embedded")``)."""
THRESHOLD_COMMANDS = (*PROCESS_COMMANDS, "generate")
HIDDEN_COMMANDS = frozenset({"embedded"})
"""Scopes that are not subcommands of the CLI."""
TRACING_INSTRUMENTATIONS = ("requests", "urllib3")
"""The libraries ``--tracing.instrument`` can instrument (OpenTelemetry's packages)."""


@dataclass(frozen=True)
class Setting:
    """How one ``Config`` field is set: flag, environment variable, YAML key, parser, help."""

    key: str
    help: str
    parse: Callable[[str], Any]
    env: str
    commands: frozenset[str]
    multiple: bool = False
    secret: bool = False
    metavar: str = "VALUE"
    per_cache: bool = False
    """A threshold that a cache may override (``alerts.overrides``) and that a running
    process may change (``configure_alert_threshold``, a reload)."""
    fallback_env: str | None = None
    """A second variable read when ``env`` is unset (another tool's name for the setting)."""

    def environ_value(self, environ: Mapping[str, str]) -> tuple[str, str] | None:
        """(variable, raw value) from the environment: ``env``, else ``fallback_env``."""
        for name in (self.env, self.fallback_env):
            if name and environ.get(name, "").strip():
                return name, environ[name]
        return None

    def show(self, value: Any) -> str:
        """A value as the user would write it (durations as ``30m``, lists comma-separated)."""
        if self.secret and value:
            return "<secret>"
        if value is None or value == () or value == "":
            return "none"
        if isinstance(value, tuple):
            return ",".join(str(v) for v in value)
        if self.parse in (parse_duration, parse_positive_duration):
            return format_duration(float(value))
        return str(value)

    @property
    def flag(self) -> str:
        return f"--{self.key}"

    @property
    def yaml_path(self) -> tuple[str, ...]:
        return tuple(part.replace("-", "_") for part in self.key.split("."))


def setting(
    key: str,
    default: Any,
    help: str,
    parse: Callable[[str], Any] = str,
    *,
    env: str | None = None,
    commands: Sequence[str] = PROCESS_COMMANDS,
    multiple: bool = False,
    secret: bool = False,
    metavar: str = "VALUE",
    per_cache: bool = False,
    fallback_env: str | None = None,
) -> Any:
    """A ``Config`` field declared together with how it is set."""
    env_name = env or ENV_PREFIX + re.sub(r"[.\-]", "_", key).upper()
    meta = Setting(
        key,
        help,
        parse,
        env_name,
        frozenset(commands),
        multiple,
        secret,
        metavar,
        per_cache=per_cache,
        fallback_env=fallback_env,
    )
    if multiple:
        return field(default_factory=lambda: tuple(default), metadata={"setting": meta})
    return field(default=default, metadata={"setting": meta})


@dataclass(frozen=True)
class Config:
    """Every setting of cachewatch, validated. Build it with ``load_config``."""

    config_file: str | None = setting(
        "config.file",
        None,
        "YAML configuration file.",
        metavar="PATH",
        commands=("serve", "demo", "generate", "alerts"),
    )
    web_listen_address: ListenAddress = setting(
        "web.listen-address",
        ListenAddress("", DEFAULT_PORT),
        "Address to serve /metrics, /health and the other endpoints on.",
        parse_listen_address,
        metavar="HOST:PORT",
        commands=SERVICE_COMMANDS,
    )
    log_level: str = setting(
        "log.level", "info", "Log level.", choice("debug", "info", "warn", "error"),
        commands=SERVICE_COMMANDS,
    )  # fmt: skip
    log_format: str = setting(
        "log.format", "logfmt", "Log format.", choice("logfmt", "json"), commands=SERVICE_COMMANDS
    )
    max_caches: int = setting(
        "cache.max-names",
        200,
        'Most distinct cache names; further names are counted as cache="other".',
        parse_positive_int,
        metavar="N",
    )
    duration: float = setting(
        "duration",
        0.0,
        "Stop the demo after this long (0 runs until Ctrl-C).",
        parse_duration,
        commands=("demo",),
        metavar="DURATION",
    )
    seed: int = setting(
        "seed", 42, "Seed of the demo's synthetic workload.", parse_int, commands=("demo",),
        metavar="N",
    )  # fmt: skip
    demo_speed: float = setting(
        "demo.speed",
        1.0,
        "Speed of the demo's phase cycle (2 runs the phases twice as fast).",
        parse_number,
        commands=("demo",),
        metavar="FACTOR",
    )

    # --- analysis (trends and alert states) --------------------------------------------------
    sample_interval: float = setting(
        "sample-interval",
        15.0,
        "How often each cache's signals are sampled for trends and alerts.",
        parse_positive_duration,
        metavar="DURATION",
    )
    trend_window: float = setting(
        "trend-window",
        1800.0,
        "Window of the least-squares trend fits.",
        parse_positive_duration,
        metavar="DURATION",
    )
    # --- alert thresholds: one source of truth for the exporter, the rules and dashboards ----
    hit_ratio_warning: float = setting(
        "alerts.hit-ratio-warning", 0.80, "CacheHitRatioLow warning below this hit ratio.",
        parse_ratio, env="CACHE_HIT_RATIO_WARNING_THRESHOLD", commands=THRESHOLD_COMMANDS,
        metavar="RATIO", per_cache=True,
    )  # fmt: skip
    hit_ratio_critical: float = setting(
        "alerts.hit-ratio-critical", 0.50, "CacheHitRatioLow critical below this hit ratio.",
        parse_ratio, env="CACHE_HIT_RATIO_CRITICAL_THRESHOLD", commands=THRESHOLD_COMMANDS,
        metavar="RATIO", per_cache=True,
    )  # fmt: skip
    hit_ratio_min_request_rate: float = setting(
        "alerts.hit-ratio-min-request-rate", 1.0,
        "Lookups per second below which a cache is idle and CacheHitRatioLow never fires.",
        parse_non_negative, env="CACHE_HIT_RATIO_MIN_REQUEST_RATE", commands=THRESHOLD_COMMANDS,
        metavar="PER_SECOND",
    )  # fmt: skip
    memory_warning_mb: float = setting(
        "alerts.memory-warning-mb", 500.0, "CacheMemoryHigh warning above this many MB.",
        parse_non_negative, env="CACHE_MEMORY_WARNING_THRESHOLD_MB", commands=THRESHOLD_COMMANDS,
        metavar="MB", per_cache=True,
    )  # fmt: skip
    memory_critical_mb: float = setting(
        "alerts.memory-critical-mb", 1000.0, "CacheMemoryHigh critical above this many MB.",
        parse_non_negative, env="CACHE_MEMORY_CRITICAL_THRESHOLD_MB",
        commands=THRESHOLD_COMMANDS, metavar="MB", per_cache=True,
    )  # fmt: skip
    memory_near_limit_ratio: float = setting(
        "alerts.memory-near-limit-ratio", 0.90,
        "CacheMemoryNearLimit above this share of the cache's memory limit.",
        parse_ratio, env="CACHE_MEMORY_NEAR_LIMIT_RATIO", commands=THRESHOLD_COMMANDS,
        metavar="RATIO", per_cache=True,
    )  # fmt: skip
    memory_full_soon_seconds: float = setting(
        "alerts.memory-full-soon", 4 * 3600.0,
        "CacheMemoryFullSoon when the memory limit is forecast to be reached within this time.",
        parse_positive_duration, env="CACHE_MEMORY_FULL_SOON_WITHIN",
        commands=THRESHOLD_COMMANDS, metavar="DURATION", per_cache=True,
    )  # fmt: skip
    error_ratio_warning: float = setting(
        "alerts.error-ratio-warning", 0.05,
        "CacheErrorRateHigh warning above this share of failed operations.",
        parse_ratio, env="CACHE_ERROR_RATE_WARNING_THRESHOLD", commands=THRESHOLD_COMMANDS,
        metavar="RATIO", per_cache=True,
    )  # fmt: skip
    error_ratio_critical: float = setting(
        "alerts.error-ratio-critical", 0.20,
        "CacheErrorRateHigh critical above this share of failed operations.",
        parse_ratio, env="CACHE_ERROR_RATE_CRITICAL_THRESHOLD", commands=THRESHOLD_COMMANDS,
        metavar="RATIO", per_cache=True,
    )  # fmt: skip
    eviction_ratio_warning: float = setting(
        "alerts.eviction-ratio-warning", 0.20,
        "CacheEvictionRateHigh warning above this many evictions per put.",
        parse_non_negative, env="CACHE_EVICTION_RATE_WARNING_THRESHOLD",
        commands=THRESHOLD_COMMANDS, metavar="RATIO", per_cache=True,
    )  # fmt: skip
    latency_p99_warning_seconds: float = setting(
        "alerts.latency-p99-warning", 0.1,
        "CacheLatencyHigh warning above this p99 operation latency.",
        parse_positive_duration, env="CACHE_LATENCY_P99_WARNING_THRESHOLD",
        commands=THRESHOLD_COMMANDS, metavar="DURATION", per_cache=True,
    )  # fmt: skip
    cleanup_stalled_factor: float = setting(
        "alerts.cleanup-stalled-factor", 3.0,
        "CacheCleanupStalled when no cleanup ran for this many times its usual interval.",
        parse_non_negative, env="CACHE_CLEANUP_STALLED_FACTOR", commands=THRESHOLD_COMMANDS,
        metavar="FACTOR", per_cache=True,
    )  # fmt: skip
    alert_for_seconds: float = setting(
        "alerts.for", 300.0,
        "How long a condition must hold before its alert fires (the rules' 'for').",
        parse_duration, env="CACHE_ALERT_FOR", commands=THRESHOLD_COMMANDS,
        metavar="DURATION",
    )  # fmt: skip
    alert_escalate_after_seconds: float = setting(
        "alerts.escalate-after", 1800.0,
        "A warning still firing after this long is escalated to critical.",
        parse_positive_duration, env="CACHE_ALERT_ESCALATE_AFTER",
        commands=THRESHOLD_COMMANDS, metavar="DURATION",
    )  # fmt: skip
    alert_notify_cooldown_seconds: float = setting(
        "alerts.notify-cooldown", 300.0,
        "Least time between two log notifications of the same alert and cache.",
        parse_duration, env="CACHE_ALERT_NOTIFY_COOLDOWN", commands=THRESHOLD_COMMANDS,
        metavar="DURATION",
    )  # fmt: skip
    # --- the alert sections of the YAML file that hold more than one value (config/alerting.py)
    alert_overrides: tuple[ThresholdOverride, ...] = ()
    """``alerts.overrides``: the thresholds of single caches."""
    custom_alerts: tuple[CustomAlert, ...] = ()
    """``alerts.custom``: the alerts the file defines."""

    # --- Redis source (cachewatch serve) -------------------------------------------------------
    redis_addr: RedisAddress | None = setting(
        "redis.addr", None,
        "Redis server to watch: redis://[USER@]HOST[:PORT][/DB], or rediss:// for TLS.",
        parse_redis_address, commands=("serve",), metavar="URL",
    )  # fmt: skip
    redis_caches: tuple[CachePrefix, ...] = setting(
        "redis.cache", (),
        "A logical cache: the keys starting with PREFIX (repeatable; in YAML a mapping "
        "redis: {caches: {NAME: PREFIX}}).",
        parse_cache_prefix, multiple=True, commands=("serve",), metavar="NAME=PREFIX",
    )  # fmt: skip
    redis_username: str | None = setting(
        "redis.username", None, "Redis ACL user name.", commands=("serve",), metavar="USER"
    )
    redis_password: Secret | None = setting(
        "redis.password", None,
        "Redis password; prefer the environment variable or --redis.password-file.",
        Secret, secret=True, commands=("serve",), metavar="PASSWORD",
    )  # fmt: skip
    redis_password_file: str | None = setting(
        "redis.password-file", None, "File holding the Redis password (first line).",
        commands=("serve",), metavar="PATH",
    )  # fmt: skip
    redis_tls_ca_file: str | None = setting(
        "redis.tls-ca-file", None, "CA certificates to verify the server with (rediss://).",
        commands=("serve",), metavar="PATH",
    )  # fmt: skip
    redis_tls_cert_file: str | None = setting(
        "redis.tls-cert-file", None, "Client certificate for TLS (rediss://).",
        commands=("serve",), metavar="PATH",
    )  # fmt: skip
    redis_tls_key_file: str | None = setting(
        "redis.tls-key-file", None, "Client certificate's private key for TLS (rediss://).",
        commands=("serve",), metavar="PATH",
    )  # fmt: skip
    redis_connect_timeout: float = setting(
        "redis.connect-timeout", 2.0, "Timeout of connecting to Redis.",
        parse_positive_duration, commands=("serve",), metavar="DURATION",
    )  # fmt: skip
    redis_socket_timeout: float = setting(
        "redis.socket-timeout", 3.0,
        "Timeout of each Redis reply; keep connect + socket timeout below the scrape timeout.",
        parse_positive_duration, commands=("serve",), metavar="DURATION",
    )  # fmt: skip
    redis_census_interval: float = setting(
        "redis.census-interval", 5.0, "Time between two budgeted steps of the key census.",
        parse_positive_duration, commands=("serve",), metavar="DURATION",
    )  # fmt: skip
    redis_census_keys: int = setting(
        "redis.census-keys", 1500,
        "Census budget: keys SCANned per census step (0 turns the census off).",
        parse_census_keys, commands=("serve",), metavar="N",
    )  # fmt: skip
    redis_census_samples: int = setting(
        "redis.census-samples", 32,
        "Census budget: keys measured with MEMORY USAGE per census step (0: no memory).",
        parse_census_samples, commands=("serve",), metavar="N",
    )  # fmt: skip
    # --- Redis as deployed: Sentinel and Cluster -----------------------------------------------
    redis_sentinel_addrs: tuple[RedisAddress, ...] = setting(
        "redis.sentinel-addr", (),
        "A Sentinel to ask for the current master (repeatable: HOST:PORT, or redis:// or "
        "rediss://); with --redis.sentinel-master the exporter follows the master across "
        "failovers, and --redis.addr, when given, only says the scheme, DB and credentials.",
        parse_sentinel_address, multiple=True, commands=("serve",), metavar="HOST:PORT",
    )  # fmt: skip
    redis_sentinel_master: str | None = setting(
        "redis.sentinel-master", None, "Name of the master the Sentinels watch.",
        parse_sentinel_master, commands=("serve",), metavar="NAME",
    )  # fmt: skip
    redis_sentinel_username: str | None = setting(
        "redis.sentinel-username", None, "Sentinel ACL user name.", commands=("serve",),
        metavar="USER",
    )  # fmt: skip
    redis_sentinel_password: Secret | None = setting(
        "redis.sentinel-password", None,
        "Sentinel password; prefer the environment variable or --redis.sentinel-password-file.",
        Secret, secret=True, commands=("serve",), metavar="PASSWORD",
    )  # fmt: skip
    redis_sentinel_password_file: str | None = setting(
        "redis.sentinel-password-file", None, "File holding the Sentinel password (first line).",
        commands=("serve",), metavar="PATH",
    )  # fmt: skip
    redis_cluster: bool = setting(
        "redis.cluster", False,
        "--redis.addr is a seed node of a Redis Cluster: discover every node (/discover for "
        "Prometheus http_sd_configs, /probe?target=HOST:PORT per node) and count the logical "
        "caches over all masters.",
        parse_bool, commands=("serve",), metavar="BOOL",
    )  # fmt: skip
    redis_topology_refresh: float = setting(
        "redis.topology-refresh", 30.0,
        "How often the cluster's nodes (CLUSTER NODES) and a Sentinel's replicas are read again.",
        parse_positive_duration, commands=("serve",), metavar="DURATION",
    )  # fmt: skip
    # --- hardening: access control of the HTTP endpoints ------------------------------------
    web_config_file: str | None = setting(
        "web.config.file",
        None,
        "Web configuration in the Prometheus exporter-toolkit format (TLS, basic auth); "
        "see docs/security.md.",
        metavar="PATH",
    )
    probe_config_file: str | None = setting(
        "probe.config.file",
        None,
        "Redis targets that /probe?target=NAME may scrape (names, addresses, credential "
        "files, caches); see docs/security.md.",
        commands=("serve",),
        metavar="PATH",
    )
    # --- the status page's links to the other tools (shown only when set) --------------------
    links_grafana_url: str | None = setting(
        "links.grafana-url", None,
        "Grafana as the browser reaches it, linked from the status page at /.",
        parse_link_url, metavar="URL",
    )  # fmt: skip
    links_prometheus_url: str | None = setting(
        "links.prometheus-url", None,
        "Prometheus as the browser reaches it, linked from the status page at /.",
        parse_link_url, metavar="URL",
    )  # fmt: skip
    links_alertmanager_url: str | None = setting(
        "links.alertmanager-url", None,
        "Alertmanager as the browser reaches it, linked from the status page at /.",
        parse_link_url, metavar="URL",
    )  # fmt: skip
    links_jaeger_url: str | None = setting(
        "links.jaeger-url", None,
        "Jaeger as the browser reaches it, linked from the status page at /.",
        parse_link_url, metavar="URL",
    )  # fmt: skip

    # --- analysis: windows of the alert signals ------------------------------------------------
    alert_rate_window: float = setting(
        "alerts.rate-window", 300.0,
        "Window of the rates the alerts read (hit, error and eviction ratios, p99 latency, "
        "request rate).",
        parse_positive_duration, env="CACHE_ALERT_RATE_WINDOW", commands=THRESHOLD_COMMANDS,
        metavar="DURATION",
    )  # fmt: skip
    health_fail_on_critical: bool = setting(
        "health.fail-on-critical", False,
        "Whether a cache in the critical alert state makes /health answer 503 (for a "
        "check that gates traffic on cache alerts; probes use /-/healthy and /-/ready).",
        parse_bool, metavar="BOOL",
    )  # fmt: skip

    # --- tracing (the OTEL_* variables choose exporter, endpoint, sampler; see docs/tracing.md)
    tracing_record_keys: bool = setting(
        "tracing.record-keys", False,
        "Add a SHA-256 hash of each cache key to spans (keys themselves are never recorded).",
        parse_bool, env="CACHEWATCH_TRACING_RECORD_KEYS", metavar="BOOL",
    )  # fmt: skip
    tracing_instrument: tuple[str, ...] = setting(
        "tracing.instrument", (),
        "OpenTelemetry instrumentations to turn on while tracing, so that a trace shows the "
        "backend call after a cache miss: requests, urllib3 (comma-separated or repeated; "
        "needs cachewatch[instrumentation]).",
        choice(*TRACING_INSTRUMENTATIONS), multiple=True, env="CACHEWATCH_TRACING_INSTRUMENT",
        metavar="LIBRARY",
    )  # fmt: skip
    otel_metrics_bridge: bool = setting(
        "otel-metrics.bridge", False,
        "Serve metrics recorded through the OpenTelemetry metrics API on /metrics as well.",
        parse_bool, metavar="BOOL",
    )  # fmt: skip
    otel_metrics_scope_labels: bool = setting(
        "otel-metrics.scope-labels", False,
        "Keep the otel_scope_* labels on bridged OpenTelemetry metrics.",
        parse_bool, metavar="BOOL",
    )  # fmt: skip

    # --- bundle: generated rules and dashboards, Alertmanager client -------------------------
    grafana_url: str = setting(
        "bundle.grafana-url", "http://localhost:3000",
        "Grafana base URL that the generated alerts' dashboard_url annotations link to.",
        parse_http_url, commands=("generate",), metavar="URL",
    )  # fmt: skip
    redis_replica_lag_seconds: float = setting(
        "alerts.redis-replica-lag", 30.0,
        "RedisReplicaLagHigh when a replica has not acknowledged its offset for this long.",
        parse_positive_duration, commands=("generate",), metavar="DURATION",
    )  # fmt: skip
    redis_min_sentinels: int = setting(
        "alerts.redis-min-sentinels", 3,
        "RedisSentinelsTooFew when fewer Sentinels than this watch a master and are not down.",
        parse_positive_int, commands=("generate",), metavar="N",
    )  # fmt: skip
    redis_replicas_window: float = setting(
        "alerts.redis-replicas-window", 600.0,
        "RedisReplicasDisconnected when a master has fewer replicas than at any time in this "
        "window.",
        parse_positive_duration, commands=("generate",), metavar="DURATION",
    )  # fmt: skip
    group_labels: tuple[str, ...] = setting(
        "bundle.group-labels", ("job",),
        "Labels that tell one service from another (comma-separated, e.g. cluster,namespace,"
        "job): every generated rule, alert, Alertmanager group and dashboard variable "
        "aggregates by them; signals of one process (memory, entries, sources, the exporter's "
        "own up) keep instance as well.",
        parse_group_labels, commands=("generate",), metavar="LABELS",
    )  # fmt: skip
    runbook_url: str = setting(
        "bundle.runbook-url",
        "https://github.com/cachewatch/cachewatch/blob/main/docs/runbook.md",
        "Runbook URL the generated alerts' runbook_url annotations link to (plus #alertname).",
        commands=("generate",), metavar="URL",
    )  # fmt: skip
    custom_runbook_url: str | None = setting(
        "bundle.custom-runbook-url", None,
        "URL of the generated runbook of the custom alerts (docs/runbook-custom.md) that their "
        "runbook_url annotations link to (plus #alertname); none: next to bundle.runbook-url.",
        commands=("generate",), metavar="URL",
    )  # fmt: skip
    alertmanager_url: str = setting(
        "alertmanager.url", "http://localhost:9093",
        "Alertmanager base URL for the alerts commands (list, silences, ack).",
        parse_http_url, commands=("alerts",), metavar="URL",
    )  # fmt: skip
    report_url: str = setting(
        "url", f"http://localhost:{DEFAULT_PORT}",
        "Base URL of the running cachewatch whose report to print.",
        env="CACHEWATCH_URL", commands=("report",), metavar="URL",
    )  # fmt: skip

    # --- multi-process applications (gunicorn, uWSGI, Celery, multiprocessing) --------------
    multiprocess_dir: str | None = setting(
        "multiprocess.dir", None,
        "Directory shared by the processes of a multi-process application: each process "
        "writes its caches' counts there, and whichever process serves /metrics publishes "
        "their aggregate; see docs/multiprocess.md.",
        commands=("serve", "embedded"), metavar="DIR", fallback_env="PROMETHEUS_MULTIPROC_DIR",
    )  # fmt: skip
    multiprocess_flush_interval: float = setting(
        "multiprocess.flush-interval", 1.0,
        "Multi-process mode: longest time between two writes of a process's counts "
        "to its file (and so the most a killed process loses).",
        parse_positive_duration, commands=("embedded",), metavar="DURATION",
    )  # fmt: skip

    # --- the groups each part of the program is handed ----------------------------------------
    @property
    def alerts(self) -> AlertSettings:
        return group(AlertSettings, self)

    @property
    def analysis(self) -> AnalysisSettings:
        return group(AnalysisSettings, self)

    @property
    def bundle(self) -> BundleSettings:
        return group(BundleSettings, self)

    @property
    def tracing(self) -> TracingOptions:
        return group(TracingOptions, self)

    @property
    def demo(self) -> DemoSettings:
        return group(DemoSettings, self)

    @property
    def links(self) -> LinkSettings:
        return group(LinkSettings, self)

    @property
    def multiprocess(self) -> MultiprocessSettings | None:
        """The multi-process mode's settings, or None when it is off."""
        if not self.multiprocess_dir:
            return None
        return group(MultiprocessSettings, self)


def settings() -> list[tuple[str, Setting, Any]]:
    """(field name, setting, default) for every declared setting, in declaration order."""
    found = []
    for f in dataclasses.fields(Config):
        meta = f.metadata.get("setting")
        if isinstance(meta, Setting):
            if f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = f.default
            found.append((f.name, meta, default))
    return found


def settings_for(command: str) -> list[tuple[str, Setting, Any]]:
    return [entry for entry in settings() if command in entry[1].commands]


# --- the groups -------------------------------------------------------------------------------
# Each part of the program is handed the group it needs, never the whole ``Config``, so that
# what a module depends on is visible in its signature. A group's fields carry the names of
# the ``Config`` fields they come from (``group`` copies them) and their defaults: nothing is
# declared twice.
_DEFAULTS = Config()
G = TypeVar("G")


def group(cls: type[G], config: Config) -> G:
    """The ``cls`` group of ``config``: its fields copied by name."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    return cls(**{f.name: getattr(config, f.name) for f in fields})


@dataclass(frozen=True)
class AlertSettings:
    """Thresholds and timings of the alerts: the exporter's own alert states, the generated
    rules and the dashboards' threshold lines all read these."""

    hit_ratio_warning: float = _DEFAULTS.hit_ratio_warning
    hit_ratio_critical: float = _DEFAULTS.hit_ratio_critical
    hit_ratio_min_request_rate: float = _DEFAULTS.hit_ratio_min_request_rate
    memory_warning_mb: float = _DEFAULTS.memory_warning_mb
    memory_critical_mb: float = _DEFAULTS.memory_critical_mb
    memory_near_limit_ratio: float = _DEFAULTS.memory_near_limit_ratio
    memory_full_soon_seconds: float = _DEFAULTS.memory_full_soon_seconds
    error_ratio_warning: float = _DEFAULTS.error_ratio_warning
    error_ratio_critical: float = _DEFAULTS.error_ratio_critical
    eviction_ratio_warning: float = _DEFAULTS.eviction_ratio_warning
    latency_p99_warning_seconds: float = _DEFAULTS.latency_p99_warning_seconds
    cleanup_stalled_factor: float = _DEFAULTS.cleanup_stalled_factor
    alert_for_seconds: float = _DEFAULTS.alert_for_seconds
    alert_escalate_after_seconds: float = _DEFAULTS.alert_escalate_after_seconds
    alert_notify_cooldown_seconds: float = _DEFAULTS.alert_notify_cooldown_seconds
    alert_rate_window: float = _DEFAULTS.alert_rate_window
    trend_window: float = _DEFAULTS.trend_window
    """The window of the trend fits, and so of the memory-full forecast an alert reads."""
    alert_overrides: tuple[ThresholdOverride, ...] = ()
    custom_alerts: tuple[CustomAlert, ...] = ()


@dataclass(frozen=True)
class AnalysisSettings(AlertSettings):
    """What the analysis of a running process needs: sampling, alerts, health."""

    sample_interval: float = _DEFAULTS.sample_interval
    health_fail_on_critical: bool = _DEFAULTS.health_fail_on_critical


@dataclass(frozen=True)
class BundleSettings(AlertSettings):
    """What the generators of rules and dashboards need: the alerts and the links to write."""

    grafana_url: str = _DEFAULTS.grafana_url
    runbook_url: str = _DEFAULTS.runbook_url
    custom_runbook_url: str | None = _DEFAULTS.custom_runbook_url
    group_labels: tuple[str, ...] = _DEFAULTS.group_labels
    redis_replica_lag_seconds: float = _DEFAULTS.redis_replica_lag_seconds
    redis_min_sentinels: int = _DEFAULTS.redis_min_sentinels
    redis_replicas_window: float = _DEFAULTS.redis_replicas_window


@dataclass(frozen=True)
class TracingOptions:
    """cachewatch's own tracing switches (the standard ``OTEL_*`` variables say the rest)."""

    tracing_record_keys: bool = _DEFAULTS.tracing_record_keys
    tracing_instrument: tuple[str, ...] = _DEFAULTS.tracing_instrument
    otel_metrics_bridge: bool = _DEFAULTS.otel_metrics_bridge
    otel_metrics_scope_labels: bool = _DEFAULTS.otel_metrics_scope_labels


@dataclass(frozen=True)
class DemoSettings:
    duration: float = _DEFAULTS.duration
    seed: int = _DEFAULTS.seed
    demo_speed: float = _DEFAULTS.demo_speed


@dataclass(frozen=True)
class LinkSettings:
    """Where the status page links to, when set: the tools a person goes on to."""

    links_grafana_url: str | None = _DEFAULTS.links_grafana_url
    links_prometheus_url: str | None = _DEFAULTS.links_prometheus_url
    links_alertmanager_url: str | None = _DEFAULTS.links_alertmanager_url
    links_jaeger_url: str | None = _DEFAULTS.links_jaeger_url

    def by_tool(self) -> dict[str, str | None]:
        """tool -> URL (None: not configured)."""
        return {
            f.name.removeprefix("links_").removesuffix("_url"): getattr(self, f.name)
            for f in dataclasses.fields(self)
        }


@dataclass(frozen=True)
class MultiprocessSettings:
    """Multi-process mode: the shared directory, how often a process writes its file, and
    the cap on cache names that the aggregate keeps."""

    multiprocess_dir: str = ""
    multiprocess_flush_interval: float = _DEFAULTS.multiprocess_flush_interval
    max_caches: int = _DEFAULTS.max_caches
