"""Settings: flags > environment > YAML file > defaults, validated into one frozen object.

Every setting is declared once, as a field of ``Config`` with its flag, environment variable,
YAML key, parser, default and help. The CLI, ``check-config`` and the README's reference
are all derived from these declarations.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .redisurl import CachePrefix, RedisAddress, parse_cache_prefix, parse_redis_address
from .secret import Secret, mask_url_passwords

ENV_PREFIX = "CACHEWATCH_"
DEFAULT_PORT = 10287


class ConfigError(ValueError):
    """A bad setting: the message names the setting and says what is wrong, in one line."""


# --- value parsers (strings from flags and the environment; YAML scalars are str()-ed) -------
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def parse_duration(text: str) -> float:
    """Prometheus-style durations (``15s``, ``1h30m``, ``500ms``); a bare number is seconds."""
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        pos, seconds = 0, 0.0
        for match in _DURATION_PART.finditer(value):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
            pos = match.end()
        if pos != len(value) or not value:
            raise ValueError(f"invalid duration {text!r} (use e.g. 15s, 30m, 1h30m)") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"invalid duration {text!r}: must be a finite, non-negative time")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest Prometheus-style spelling of a duration (``1800`` -> ``30m``)."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    parts = []
    remaining = seconds
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if remaining >= size:
            count = int(remaining // size)
            parts.append(f"{count}{unit}")
            remaining -= count * size
    if remaining or not parts:
        parts.append(f"{remaining:g}s")
    return "".join(parts)


def parse_positive_duration(text: str) -> float:
    seconds = parse_duration(text)
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be greater than zero")
    return seconds


def parse_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"invalid integer {text!r}") from None


def parse_positive_int(text: str) -> int:
    value = parse_int(text)
    if value < 1:
        raise ValueError(f"invalid value {text!r}: must be at least 1")
    return value


def parse_number(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"invalid number {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"invalid number {text!r}: must be finite")
    return value


def parse_non_negative(text: str) -> float:
    value = parse_number(text)
    if value < 0:
        raise ValueError(f"invalid value {text!r}: must not be negative")
    return value


def parse_ratio(text: str) -> float:
    value = parse_number(text)
    if not 0 <= value <= 1:
        raise ValueError(f"invalid ratio {text!r}: must be between 0 and 1")
    return value


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"invalid boolean {text!r} (use true or false)")


def choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in options:
            raise ValueError(f"invalid value {text!r} (one of: {', '.join(options)})")
        return value

    return parse


@dataclass(frozen=True)
class ListenAddress:
    """``host:port``; an empty host means every interface, as in the Prometheus exporters."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def bind_host(self) -> str:
        return self.host or "0.0.0.0"


def parse_listen_address(text: str) -> ListenAddress:
    value = text.strip()
    match = re.fullmatch(r"(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]*)):(\d{1,5})", value)
    if not match:
        raise ValueError(f"invalid listen address {text!r} (use host:port, :port or [::1]:port)")
    host = match.group(1) or match.group(2) or ""
    port = int(match.group(3))
    if port > 65535:
        raise ValueError(f"invalid listen address {text!r}: port must be 0-65535")
    if host and not re.fullmatch(r"[A-Za-z0-9.\-:]+", host):
        raise ValueError(f"invalid listen address {text!r}: bad host name")
    return ListenAddress(host, port)


def parse_census_keys(text: str) -> int:
    value = parse_int(text)
    if value != 0 and not 10 <= value <= 100_000:
        raise ValueError(f"invalid value {text!r}: 0 (off) or 10 to 100000 keys per step")
    return value


def parse_census_samples(text: str) -> int:
    value = parse_int(text)
    if not 0 <= value <= 10_000:
        raise ValueError(f"invalid value {text!r}: 0 to 10000 keys per step")
    return value


def parse_http_url(text: str) -> str:
    """An http(s) base URL such as ``http://alertmanager:9093``."""
    value = text.strip().rstrip("/")
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
        shown = mask_url_passwords(text)
        raise ValueError(f"invalid URL {shown!r} (use e.g. http://localhost:9093)")
    return value


# --- declarations ------------------------------------------------------------------------------
ALL_COMMANDS = frozenset({"serve", "demo"})
THRESHOLD_COMMANDS = ("serve", "demo", "generate")


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
    commands: Sequence[str] = ("serve", "demo"),
    multiple: bool = False,
    secret: bool = False,
    metavar: str = "VALUE",
) -> Any:
    """A ``Config`` field declared together with how it is set."""
    env_name = env or ENV_PREFIX + re.sub(r"[.\-]", "_", key).upper()
    meta = Setting(key, help, parse, env_name, frozenset(commands), multiple, secret, metavar)
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
    )
    log_level: str = setting(
        "log.level", "info", "Log level.", choice("debug", "info", "warn", "error")
    )
    log_format: str = setting("log.format", "logfmt", "Log format.", choice("logfmt", "json"))
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
        metavar="RATIO",
    )  # fmt: skip
    hit_ratio_critical: float = setting(
        "alerts.hit-ratio-critical", 0.50, "CacheHitRatioLow critical below this hit ratio.",
        parse_ratio, env="CACHE_HIT_RATIO_CRITICAL_THRESHOLD", commands=THRESHOLD_COMMANDS,
        metavar="RATIO",
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
        metavar="MB",
    )  # fmt: skip
    memory_critical_mb: float = setting(
        "alerts.memory-critical-mb", 1000.0, "CacheMemoryHigh critical above this many MB.",
        parse_non_negative, env="CACHE_MEMORY_CRITICAL_THRESHOLD_MB",
        commands=THRESHOLD_COMMANDS, metavar="MB",
    )  # fmt: skip
    memory_near_limit_ratio: float = setting(
        "alerts.memory-near-limit-ratio", 0.90,
        "CacheMemoryNearLimit above this share of the cache's memory limit.",
        parse_ratio, env="CACHE_MEMORY_NEAR_LIMIT_RATIO", commands=THRESHOLD_COMMANDS,
        metavar="RATIO",
    )  # fmt: skip
    memory_full_soon_seconds: float = setting(
        "alerts.memory-full-soon", 4 * 3600.0,
        "CacheMemoryFullSoon when the memory limit is forecast to be reached within this time.",
        parse_positive_duration, env="CACHE_MEMORY_FULL_SOON_WITHIN",
        commands=THRESHOLD_COMMANDS, metavar="DURATION",
    )  # fmt: skip
    error_ratio_warning: float = setting(
        "alerts.error-ratio-warning", 0.05,
        "CacheErrorRateHigh warning above this share of failed operations.",
        parse_ratio, env="CACHE_ERROR_RATE_WARNING_THRESHOLD", commands=THRESHOLD_COMMANDS,
        metavar="RATIO",
    )  # fmt: skip
    error_ratio_critical: float = setting(
        "alerts.error-ratio-critical", 0.20,
        "CacheErrorRateHigh critical above this share of failed operations.",
        parse_ratio, env="CACHE_ERROR_RATE_CRITICAL_THRESHOLD", commands=THRESHOLD_COMMANDS,
        metavar="RATIO",
    )  # fmt: skip
    eviction_ratio_warning: float = setting(
        "alerts.eviction-ratio-warning", 0.20,
        "CacheEvictionRateHigh warning above this many evictions per put.",
        parse_non_negative, env="CACHE_EVICTION_RATE_WARNING_THRESHOLD",
        commands=THRESHOLD_COMMANDS, metavar="RATIO",
    )  # fmt: skip
    latency_p99_warning_seconds: float = setting(
        "alerts.latency-p99-warning", 0.1,
        "CacheLatencyHigh warning above this p99 operation latency.",
        parse_positive_duration, env="CACHE_LATENCY_P99_WARNING_THRESHOLD",
        commands=THRESHOLD_COMMANDS, metavar="DURATION",
    )  # fmt: skip
    cleanup_stalled_factor: float = setting(
        "alerts.cleanup-stalled-factor", 3.0,
        "CacheCleanupStalled when no cleanup ran for this many times its usual interval.",
        parse_non_negative, env="CACHE_CLEANUP_STALLED_FACTOR", commands=THRESHOLD_COMMANDS,
        metavar="FACTOR",
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

    # --- analysis: windows of the alert signals ------------------------------------------------
    alert_rate_window: float = setting(
        "alerts.rate-window", 300.0,
        "Window of the rates the alerts read (hit, error and eviction ratios, p99 latency, "
        "request rate).",
        parse_positive_duration, env="CACHE_ALERT_RATE_WINDOW", commands=THRESHOLD_COMMANDS,
        metavar="DURATION",
    )  # fmt: skip
    health_fail_on_critical: bool = setting(
        "health.fail-on-critical", True,
        "Whether a cache in the critical alert state makes /health answer 503 (turn off "
        "when /health is a liveness probe that would restart the application).",
        parse_bool, metavar="BOOL",
    )  # fmt: skip

    # --- tracing (the OTEL_* variables choose exporter, endpoint, sampler; see docs/tracing.md)
    tracing_record_keys: bool = setting(
        "tracing.record-keys", False,
        "Add a SHA-256 hash of each cache key to spans (keys themselves are never recorded).",
        parse_bool, env="CACHEWATCH_TRACING_RECORD_KEYS", metavar="BOOL",
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
    runbook_url: str = setting(
        "bundle.runbook-url",
        "https://github.com/cachewatch/cachewatch/blob/main/docs/runbook.md",
        "Runbook URL the generated alerts' runbook_url annotations link to (plus #alertname).",
        commands=("generate",), metavar="URL",
    )  # fmt: skip
    alertmanager_url: str = setting(
        "alertmanager.url", "http://localhost:9093",
        "Alertmanager base URL for the alerts commands (list, silences, ack).",
        parse_http_url, commands=("alerts",), metavar="URL",
    )  # fmt: skip


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


def _parse(meta: Setting, raw: Any, origin: str) -> Any:
    """Parse one raw value; errors name the setting the way the user wrote it."""
    try:
        if meta.multiple:
            if isinstance(raw, dict):
                raw = [f"{_scalar(key)}={_scalar(value)}" for key, value in raw.items()]
            items = raw if isinstance(raw, list) else [p for p in str(raw).split(",") if p.strip()]
            return tuple(meta.parse(_scalar(item)) for item in items)
        return meta.parse(_scalar(raw))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{origin}: {exc}") from None


def _scalar(raw: Any) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, (str, int, float)):
        return str(raw)
    raise TypeError(f"expected a single value, got {type(raw).__name__}")


def _flatten_yaml(document: Any, path: str) -> dict[tuple[str, ...], Any]:
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    flat: dict[tuple[str, ...], Any] = {}

    def walk(node: dict[Any, Any], prefix: tuple[str, ...]) -> None:
        for key, value in node.items():
            name = (*prefix, str(key).replace("-", "_"))
            if isinstance(value, dict) and not _is_leaf_mapping(name):
                walk(value, name)
            else:
                flat[YAML_ALIASES.get(name, name)] = value

    walk(document, ())
    return flat


MAPPING_SETTINGS: set[tuple[str, ...]] = {("redis", "caches")}
"""YAML paths whose value is itself a mapping (e.g. NAME: PREFIX pairs), not nested keys."""

YAML_ALIASES: dict[tuple[str, ...], tuple[str, ...]] = {("redis", "caches"): ("redis", "cache")}
"""YAML paths spelt differently from their flag (a mapping of many, a flag given once each)."""


def _is_leaf_mapping(path: tuple[str, ...]) -> bool:
    return path in MAPPING_SETTINGS


def read_yaml(path: str) -> dict[tuple[str, ...], Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--config.file: cannot read {path}: {exc.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"--config.file: {path}{where}: not valid YAML") from None
    return _flatten_yaml(document, path)


def load_config(
    command: str,
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Merge flags > environment > YAML file > defaults for ``command`` and validate.

    ``flags`` maps field names to values as given on the command line (strings, or lists
    of strings for repeatable flags); ``None`` means not given.
    """
    flags = flags or {}
    environ = os.environ if environ is None else environ
    declared = settings()
    by_path = {meta.yaml_path: (name, meta) for name, meta, _ in declared}
    values: dict[str, Any] = {}

    config_path = flags.get("config_file") or environ.get("CACHEWATCH_CONFIG_FILE")
    if config_path:
        for path, raw in read_yaml(str(config_path)).items():
            if path not in by_path:
                raise ConfigError(f"{config_path}: unknown setting {'.'.join(path)!r}")
            name, meta = by_path[path]
            values[name] = _parse(meta, raw, f"{config_path}: {'.'.join(path)}")
        values["config_file"] = str(config_path)

    for name, meta, _ in declared:
        if command not in meta.commands and name != "config_file":
            continue
        if meta.env in environ and environ[meta.env] != "":
            values[name] = _parse(meta, environ[meta.env], meta.env)
        given = flags.get(name)
        if given is not None and given != []:
            values[name] = _parse(meta, given, meta.flag)
    try:
        config = Config(**values)
    except TypeError as exc:  # pragma: no cover - a declaration bug, not a user mistake
        raise ConfigError(str(exc)) from None
    validate(config)
    return config


def _check_thresholds(config: Config) -> None:
    if config.hit_ratio_critical > config.hit_ratio_warning:
        raise ConfigError(
            "alerts.hit-ratio-critical must not be above alerts.hit-ratio-warning "
            f"({config.hit_ratio_critical} > {config.hit_ratio_warning})"
        )
    if config.memory_critical_mb < config.memory_warning_mb:
        raise ConfigError(
            "alerts.memory-critical-mb must not be below alerts.memory-warning-mb "
            f"({config.memory_critical_mb} < {config.memory_warning_mb})"
        )
    if config.error_ratio_critical < config.error_ratio_warning:
        raise ConfigError(
            "alerts.error-ratio-critical must not be below alerts.error-ratio-warning "
            f"({config.error_ratio_critical} < {config.error_ratio_warning})"
        )


def _check_readable(flag: str, path: str | None) -> None:
    if path is None:
        return
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise ConfigError(f"{flag}: cannot read {path}: {exc.strerror or exc}") from None


def _check_redis(config: Config) -> None:
    names = [cache.name for cache in config.redis_caches]
    prefixes = [cache.prefix for cache in config.redis_caches]
    for label, values in (("name", names), ("prefix", prefixes)):
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise ConfigError(f"--redis.cache: the {label} {repeated[0]!r} is given twice")
    if config.redis_password is not None and config.redis_password_file is not None:
        raise ConfigError(
            "--redis.password-file: give the password either in a file or in "
            "CACHEWATCH_REDIS_PASSWORD/--redis.password, not both"
        )
    _check_readable("--redis.password-file", config.redis_password_file)
    tls_files = {
        "--redis.tls-ca-file": config.redis_tls_ca_file,
        "--redis.tls-cert-file": config.redis_tls_cert_file,
        "--redis.tls-key-file": config.redis_tls_key_file,
    }
    for flag, path in tls_files.items():
        if path is not None and (config.redis_addr is None or not config.redis_addr.tls):
            raise ConfigError(f"{flag}: TLS files need a rediss:// address in --redis.addr")
        _check_readable(flag, path)
    if (config.redis_tls_cert_file is None) != (config.redis_tls_key_file is None):
        raise ConfigError("--redis.tls-cert-file and --redis.tls-key-file go together")


def _check_web_config(config: Config) -> None:
    if config.web_config_file:
        from .webconfig import WebConfigError, load_web_config

        try:
            load_web_config(config.web_config_file)
        except WebConfigError as exc:
            raise ConfigError(f"--web.config.file: {exc}") from None


def _check_probe_config(config: Config) -> None:
    if config.probe_config_file:
        from .probe import ProbeConfigError, load_probe_config

        try:
            load_probe_config(config.probe_config_file)
        except ProbeConfigError as exc:
            raise ConfigError(f"--probe.config.file: {exc}") from None


VALIDATORS: list[Callable[[Config], None]] = [
    _check_thresholds,
    _check_redis,
    _check_web_config,
    _check_probe_config,
]
"""Cross-setting checks; each raises ConfigError naming the settings involved."""


def validate(config: Config) -> None:
    for check in VALIDATORS:
        check(config)


def describe(config: Config) -> dict[str, Any]:
    """The effective settings, for logs and check-config, with secrets masked."""
    shown: dict[str, Any] = {}
    for name, meta, _ in settings():
        value = getattr(config, name)
        if meta.secret and value:
            value = "<secret>"
        elif isinstance(value, tuple):
            value = [str(v) for v in value]
        elif meta.parse in (parse_duration, parse_positive_duration):
            value = meta.show(value)
        elif value is not None and not isinstance(value, (int, float, str, bool)):
            value = str(value)
        if isinstance(value, str):
            value = mask_url_passwords(value)  # e.g. http://user:password@alertmanager:9093
        shown[meta.key] = value
    return shown
