"""Filling a real Redis with known keys and reading its own accounting (INFO commandstats)."""

from __future__ import annotations

from typing import Any

import redis

from cachewatch.config import RedisSettings
from cachewatch.config.redisurl import CachePrefix
from cachewatch.sources.redis import RedisSource, connect

from .servers import RedisServer

_FILL = """
local prefix, n, size = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local value = string.rep('v', size)
for i = 1, n do redis.call('SET', prefix .. i, value) end
return n
"""


def client(server: RedisServer, **kwargs: Any) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=10, **kwargs)


def fill(conn: redis.Redis, prefix: str, count: int, size: int = 16) -> None:
    """``count`` string keys ``prefix1..prefixN`` of ``size`` bytes, written inside Redis."""
    done = 0
    while done < count:
        batch = min(50_000, count - done)
        conn.eval(_FILL, 0, f"{prefix}{done}-", batch, size)
        done += batch


def commandstats(conn: redis.Redis) -> dict[str, dict[str, float]]:
    """Redis's own per-command calls and microseconds."""
    stats: dict[str, dict[str, float]] = {}
    for key, value in conn.info("commandstats").items():
        stats[key.removeprefix("cmdstat_")] = {k: float(v) for k, v in value.items()}
    return stats


def calls(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]], cmd: str
) -> float:
    return after.get(cmd, {}).get("calls", 0.0) - before.get(cmd, {}).get("calls", 0.0)


def settings_for(
    server: RedisServer, caches: dict[str, str] | None = None, **kwargs: Any
) -> RedisSettings:
    from cachewatch.config.redisurl import parse_redis_address

    options: dict[str, Any] = {"connect_timeout": 1.0, "socket_timeout": 1.0}
    options.update(kwargs)
    return RedisSettings(
        address=parse_redis_address(server.url),
        caches=tuple(CachePrefix(name, prefix) for name, prefix in (caches or {}).items()),
        **options,
    )


__all__ = ["RedisSource", "calls", "client", "commandstats", "connect", "fill", "settings_for"]
