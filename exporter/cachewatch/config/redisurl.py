"""Redis addresses (``redis://`` and ``rediss://`` URLs) and logical-cache prefixes, parsed.

The address's password is kept as a ``Secret`` so that printing the address, the
configuration or an error about it never shows the password.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from ..secret import Secret, mask_url_passwords

DEFAULT_REDIS_PORT = 6379


@dataclass(frozen=True)
class RedisAddress:
    """One Redis server and database; ``str()`` masks the password."""

    scheme: str
    host: str
    port: int
    db: int = 0
    username: str | None = None
    password: Secret | None = None

    @property
    def tls(self) -> bool:
        return self.scheme == "rediss"

    def __str__(self) -> str:
        user = ""
        if self.username or self.password:
            user = self.username or ""
            if self.password:
                user += ":***"
            user += "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{user}{host}:{self.port}/{self.db}"


def parse_redis_address(text: str) -> RedisAddress:
    """``redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]``; ``rediss://`` for TLS."""
    shown = mask_url_passwords(text.strip())
    usage = "(use redis://HOST:PORT/DB or rediss://HOST:PORT/DB)"
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        raise ValueError(f"invalid Redis address {shown!r} {usage}") from None
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"invalid Redis address {shown!r}: the scheme must be redis or rediss")
    if not parts.hostname:
        raise ValueError(f"invalid Redis address {shown!r}: no host {usage}")
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ValueError(f"invalid Redis address {shown!r}: the path must be a DB index {usage}")
    if parts.query or parts.fragment:
        raise ValueError(f"invalid Redis address {shown!r}: no query or fragment allowed")
    db = int(path) if path else 0
    if db > 100_000:
        raise ValueError(f"invalid Redis address {shown!r}: DB index {db} is out of range")
    password = unquote(parts.password) if parts.password else None
    return RedisAddress(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port or DEFAULT_REDIS_PORT,
        db=db,
        username=unquote(parts.username) if parts.username else None,
        password=Secret(password) if password else None,
    )


DEFAULT_SENTINEL_PORT = 26379


def parse_sentinel_address(text: str) -> RedisAddress:
    """A Sentinel: ``HOST[:PORT]`` (port 26379), or ``redis://HOST[:PORT]`` / ``rediss://``."""
    text = text.strip()
    url = text if "://" in text else f"redis://{text}"
    address = parse_redis_address(url)
    try:
        given = urlsplit(url).port
    except ValueError:
        given = None
    if given is None:
        address = dataclasses.replace(address, port=DEFAULT_SENTINEL_PORT)
    return address


def parse_sentinel_master(text: str) -> str:
    """A master name as Sentinel knows it (``sentinel monitor NAME ...``)."""
    name = text.strip()
    if not re.fullmatch(r"[A-Za-z0-9_.:\-]{1,128}", name):
        raise ValueError(f"invalid master name {name!r} (1-128 letters, digits, and _ . : -)")
    return name


_CACHE_NAME = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")


@dataclass(frozen=True)
class CachePrefix:
    """A logical cache in Redis: every key starting with ``prefix`` belongs to ``name``."""

    name: str
    prefix: str

    def __str__(self) -> str:
        return f"{self.name}={self.prefix}"


def parse_cache_prefix(text: str) -> CachePrefix:
    name, sep, prefix = text.partition("=")
    name = name.strip()
    if not sep or not prefix:
        raise ValueError(f"invalid cache {text!r} (use NAME=PREFIX, e.g. sessions=session:)")
    if not _CACHE_NAME.fullmatch(name):
        raise ValueError(f"invalid cache name {name!r} (1-64 letters, digits, and _ . : - only)")
    return CachePrefix(name, prefix)
