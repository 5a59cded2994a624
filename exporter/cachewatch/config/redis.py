"""The Redis source's settings: how to reach one server and which logical caches to count in
it, built from the configuration (``files.redis_settings``) or from a probe target."""

from __future__ import annotations

from dataclasses import dataclass

from ..secret import Secret, redact
from .redisurl import CachePrefix, RedisAddress
from .settings import Config

DEFAULTS = Config()


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
