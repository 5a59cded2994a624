"""The files that settings name, read once and here: the Redis password file, the web
configuration and the probe targets. Each failure is a ``ConfigError`` naming the flag."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..secret import Secret, read_secret_file
from .probe import ProbeConfig, ProbeConfigError, load_probe_config
from .redis import RedisSettings, SentinelSettings
from .redisurl import RedisAddress
from .settings import Config, ConfigError
from .webconfig import WebConfig, WebConfigError, load_web_config


def _password_file(path: str, flag: str) -> Secret | None:
    try:
        return read_secret_file(path)
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise ConfigError(f"{flag}: cannot read {path}: {reason}") from None


def sentinel_settings(config: Config) -> SentinelSettings | None:
    """The Sentinels to follow the master with, when given; reads their password file."""
    if not config.redis_sentinel_addrs or config.redis_sentinel_master is None:
        return None
    password = config.redis_sentinel_password
    if config.redis_sentinel_password_file is not None:
        password = _password_file(
            config.redis_sentinel_password_file, "--redis.sentinel-password-file"
        )
    return SentinelSettings(
        addresses=tuple(config.redis_sentinel_addrs),
        master_name=config.redis_sentinel_master,
        username=config.redis_sentinel_username,
        password=password,
    )


SENTINEL_MANAGED = RedisAddress("redis", "", 0)
"""The master's address before a Sentinel has named it (no --redis.addr in Sentinel mode)."""


def redis_settings(config: Config) -> RedisSettings:
    """The Redis source's settings from the configuration; reads the password files."""
    sentinel = sentinel_settings(config)
    address = config.redis_addr
    if address is None and sentinel is not None:
        address = SENTINEL_MANAGED
    if address is None:
        raise ConfigError(
            "--redis.addr: required by serve (e.g. --redis.addr redis://localhost:6379/0)"
        )
    password = config.redis_password or address.password
    if config.redis_password_file is not None:
        password = _password_file(config.redis_password_file, "--redis.password-file")
    return RedisSettings(
        address=address,
        caches=tuple(config.redis_caches),
        username=config.redis_username or address.username,
        password=password,
        tls_ca_file=config.redis_tls_ca_file,
        tls_cert_file=config.redis_tls_cert_file,
        tls_key_file=config.redis_tls_key_file,
        connect_timeout=config.redis_connect_timeout,
        socket_timeout=config.redis_socket_timeout,
        census_interval=config.redis_census_interval,
        census_keys=config.redis_census_keys,
        census_samples=config.redis_census_samples,
        sentinel=sentinel,
        cluster=config.redis_cluster,
        topology_refresh=config.redis_topology_refresh,
    )


def web_config(config: Config) -> WebConfig | None:
    """The exporter-toolkit web configuration (TLS, basic auth), when a file is named."""
    if not config.web_config_file:
        return None
    try:
        return load_web_config(config.web_config_file)
    except WebConfigError as exc:
        raise ConfigError(f"--web.config.file: {exc}") from None


def probe_targets(config: Config) -> ProbeConfig | None:
    """The targets of /probe, when a file is named, with the census budget of this config
    for the targets that have logical caches."""
    if not config.probe_config_file:
        return None
    try:
        probe = load_probe_config(config.probe_config_file)
    except ProbeConfigError as exc:
        raise ConfigError(f"--probe.config.file: {exc}") from None
    targets = {
        name: dataclasses.replace(
            target,
            settings=dataclasses.replace(
                target.settings,
                census_keys=config.redis_census_keys if target.settings.caches else 0,
                census_samples=config.redis_census_samples,
            ),
        )
        for name, target in probe.targets.items()
    }
    return dataclasses.replace(probe, targets=targets)


def _watches_redis(config: Config) -> bool:
    return config.redis_addr is not None or bool(config.redis_sentinel_addrs)


@dataclass(frozen=True)
class SettingsFiles:
    """Everything the settings' files say, read at once before anything starts."""

    web_config: WebConfig | None = None
    probe: ProbeConfig | None = None
    redis: RedisSettings | None = None


def read_files(config: Config, *, redis: bool = False) -> SettingsFiles:
    """Read every file the settings name (and, with ``redis``, the Redis settings with their
    password file): a bad one is a ConfigError before any source or thread starts."""
    return SettingsFiles(
        web_config=web_config(config),
        probe=probe_targets(config),
        redis=redis_settings(config) if redis and _watches_redis(config) else None,
    )
