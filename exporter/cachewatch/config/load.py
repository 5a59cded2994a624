"""Loading the configuration: flags > environment > YAML file > defaults, for one command,
validated into one frozen ``Config``; and ``describe`` for logs and ``check-config``."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any

from ..secret import mask_url_passwords
from . import alerting
from .settings import Config, ConfigError, Setting, settings
from .values import parse_duration, parse_positive_duration
from .yamlfile import YamlFileError, load_yaml_file


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
    if isinstance(raw, list) and all(isinstance(item, (str, int, float)) for item in raw):
        return ",".join(str(item) for item in raw)  # a YAML list is the comma-separated value
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, (str, int, float)):
        return str(raw)
    raise TypeError(f"expected a single value, got {type(raw).__name__}")


YamlSettings = dict[tuple[str, ...], Any]


def _flatten_yaml(document: Any, path: str) -> tuple[YamlSettings, YamlSettings]:
    """(the settings by YAML path, the structured sections by YAML path)."""
    if document is None:
        return {}, {}
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    flat: YamlSettings = {}
    sections: YamlSettings = {}

    def walk(node: dict[Any, Any], prefix: tuple[str, ...]) -> None:
        for key, value in node.items():
            name = (*prefix, str(key).replace("-", "_"))
            if name in SECTIONS:
                sections[name] = value
            elif isinstance(value, dict) and not _is_leaf_mapping(name):
                walk(value, name)
            else:
                flat[YAML_ALIASES.get(name, name)] = value

    walk(document, ())
    return flat, sections


MAPPING_SETTINGS: set[tuple[str, ...]] = {("redis", "caches")}
"""YAML paths whose value is itself a mapping (e.g. NAME: PREFIX pairs), not nested keys."""

YAML_ALIASES: dict[tuple[str, ...], tuple[str, ...]] = {("redis", "caches"): ("redis", "cache")}
"""YAML paths spelt differently from their flag (a mapping of many, a flag given once each)."""


SECTIONS = frozenset({alerting.OVERRIDES_PATH, alerting.CUSTOM_PATH})
"""YAML paths of the structured sections (``config/alerting.py`` parses them)."""


def _is_leaf_mapping(path: tuple[str, ...]) -> bool:
    return path in MAPPING_SETTINGS


def read_yaml(path: str) -> tuple[YamlSettings, YamlSettings]:
    """The settings of a YAML configuration file, and its structured sections, by YAML path."""
    try:
        document = load_yaml_file(path)
    except YamlFileError as exc:
        raise ConfigError(f"--config.file: {exc}") from None  # the flag, as everywhere
    return _flatten_yaml(document, path)


def _with_sections(config: Config, sections: YamlSettings, path: str) -> Config:
    """``config`` with the alert sections of the file at ``path``: custom alerts first, so
    that overrides may name them."""
    custom = alerting.parse_custom_alerts(
        sections.get(alerting.CUSTOM_PATH), f"{path}: {'.'.join(alerting.CUSTOM_PATH)}"
    )
    defaults = {name: getattr(config, name) for name, _ in alerting.per_cache_settings().values()}
    overrides = alerting.parse_overrides(
        sections.get(alerting.OVERRIDES_PATH),
        f"{path}: {'.'.join(alerting.OVERRIDES_PATH)}",
        custom,
        defaults,
    )
    return dataclasses.replace(config, custom_alerts=custom, alert_overrides=overrides)


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
    sections: YamlSettings = {}

    config_path = flags.get("config_file") or environ.get("CACHEWATCH_CONFIG_FILE")
    if config_path:
        flat, sections = read_yaml(str(config_path))
        for path, raw in flat.items():
            if path not in by_path:
                raise ConfigError(f"{config_path}: unknown setting {'.'.join(path)!r}")
            name, meta = by_path[path]
            values[name] = _parse(meta, raw, f"{config_path}: {'.'.join(path)}")
        values["config_file"] = str(config_path)

    for name, meta, _ in declared:
        if command not in meta.commands and name != "config_file":
            continue
        from_environ = meta.environ_value(environ)
        if from_environ is not None:
            values[name] = _parse(meta, from_environ[1], from_environ[0])
        given = flags.get(name)
        if given is not None and given != []:
            values[name] = _parse(meta, given, meta.flag)
    try:
        config = Config(**values)
    except TypeError as exc:  # pragma: no cover - a declaration bug, not a user mistake
        raise ConfigError(str(exc)) from None
    validate(config)
    if sections:
        config = _with_sections(config, sections, str(config_path))
    return config


def _check_thresholds(config: Config) -> None:
    fields = [name for name, _ in alerting.per_cache_settings().values()]
    alerting.check_threshold_order({name: getattr(config, name) for name in fields})


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
    _check_topology(config)


def _check_topology(config: Config) -> None:
    if config.redis_sentinel_addrs and config.redis_sentinel_master is None:
        raise ConfigError(
            "--redis.sentinel-master: required with --redis.sentinel-addr (the name in the "
            "Sentinels' 'sentinel monitor NAME ...')"
        )
    if config.redis_sentinel_master is not None and not config.redis_sentinel_addrs:
        raise ConfigError("--redis.sentinel-addr: required with --redis.sentinel-master")
    if config.redis_sentinel_addrs and config.redis_cluster:
        raise ConfigError(
            "--redis.cluster: a Redis Cluster has no Sentinels; give either "
            "--redis.sentinel-addr or --redis.cluster"
        )
    if config.redis_cluster and config.redis_addr is None:
        raise ConfigError("--redis.addr: required with --redis.cluster (a seed node)")
    if (
        config.redis_sentinel_password is not None
        and config.redis_sentinel_password_file is not None
    ):
        raise ConfigError(
            "--redis.sentinel-password-file: give the password either in a file or in "
            "CACHEWATCH_REDIS_SENTINEL_PASSWORD/--redis.sentinel-password, not both"
        )
    _check_readable("--redis.sentinel-password-file", config.redis_sentinel_password_file)


VALIDATORS: list[Callable[[Config], None]] = [
    _check_thresholds,
    _check_redis,
]
"""Cross-setting checks; each raises ConfigError naming the settings involved. The files
that settings name are read (and checked) once, by ``files``, where they are used."""


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
    overrides: dict[str, dict[str, float]] = {}
    keys = {name: key for key, (name, _) in alerting.per_cache_settings().items()}
    for override in config.alert_overrides:
        overrides.setdefault(override.cache, {})[keys.get(override.key, override.key)] = (
            override.value
        )
    shown[".".join(alerting.OVERRIDES_PATH)] = overrides
    shown[".".join(alerting.CUSTOM_PATH)] = [
        {k: v for k, v in dataclasses.asdict(alert).items() if k != "origin"}
        for alert in config.custom_alerts
    ]
    return shown
