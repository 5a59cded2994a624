"""The Redis source's settings: how to reach one server and which logical caches to count in
it, built from the configuration (``files.redis_settings``) or from a probe target."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..secret import Secret, redact
from .redisurl import CachePrefix, RedisAddress
from .settings import Config

DEFAULTS = Config()


@dataclass(frozen=True)
class SentinelSettings:
    """Where the Sentinels are and which master to follow."""

    addresses: tuple[RedisAddress, ...]
    master_name: str
    username: str | None = None
    password: Secret | None = None


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
    sentinel: SentinelSettings | None = None
    """Follow the master these Sentinels name (``address`` then gives scheme, DB, user)."""
    cluster: bool = DEFAULTS.redis_cluster
    """``address`` is a seed of a Redis Cluster whose every node is discovered."""
    topology_refresh: float = DEFAULTS.redis_topology_refresh

    def redact(self, text: str) -> str:
        """``text`` with every password this source knows replaced by ``***``."""
        secrets = [self.password, self.address.password]
        if self.sentinel is not None:
            secrets += [self.sentinel.password, *(a.password for a in self.sentinel.addresses)]
        return redact(text, secrets)

    def one_node(self, host: str, port: int) -> RedisSettings:
        """How /probe reads one node of this topology: its address, these credentials and
        timeouts, no census (the census of a topology runs once, in ``serve``), no Sentinel."""
        address = dataclasses.replace(self.address, host=host, port=port)
        return dataclasses.replace(
            self, address=address, caches=(), census_keys=0, sentinel=None, cluster=False
        )

    def at(self, host: str, port: int) -> RedisSettings:
        """These settings for another node (a master Sentinel names, a cluster node)."""
        address = dataclasses.replace(self.address, host=host, port=port)
        return dataclasses.replace(self, address=address)
