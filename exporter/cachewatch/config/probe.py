"""The targets of ``/probe?target=NAME``: one exporter for many Redis servers, safely.

Targets are **named** in a probe configuration file (address, credentials from files, logical
caches); the URL only picks a name. A caller can never make cachewatch connect to a host of
its choosing, nor send a configured password to one (redis_exporter's ``/scrape?target=``
did both: its issue #1104). An unknown name is refused before any connection is attempted;
addresses must use an allowed scheme, and passwords cannot sit in addresses.

    allowed_schemes: [rediss]          # default: [redis, rediss]
    targets:
      sessions-primary:
        address: rediss://redis-a.internal:6380/0
        username: exporter
        password_file: secrets/redis-a.password   # relative to this file
        tls_ca_file: ca.crt
        caches: {sessions: "session:", embeddings: "emb:"}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..secret import Secret, read_secret_file
from .redis import DEFAULTS, RedisSettings
from .redisurl import parse_cache_prefix, parse_redis_address
from .values import parse_positive_duration
from .yamlfile import load_yaml_file
from .yamlfile import mapping as _yaml_mapping

SCHEMES = ("redis", "rediss")
TARGET_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
MAX_TARGETS = 1000
_TARGET_KEYS = {
    "address",
    "username",
    "password_file",
    "tls_ca_file",
    "tls_cert_file",
    "tls_key_file",
    "caches",
    "connect_timeout",
    "socket_timeout",
}


class ProbeConfigError(ValueError):
    """The probe configuration is unreadable or invalid (one line; never shows a secret)."""


@dataclass(frozen=True)
class ProbeTarget:
    """A Redis server that /probe may scrape: its name and how the Redis source reaches it."""

    name: str
    settings: RedisSettings


@dataclass(frozen=True)
class ProbeConfig:
    targets: Mapping[str, ProbeTarget] = field(default_factory=dict)
    allowed_schemes: tuple[str, ...] = SCHEMES


def _mapping(value: Any, where: str) -> dict[str, Any]:
    return _yaml_mapping(value, where, ProbeConfigError)


def _file(value: Any, where: str, base: Path) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ProbeConfigError(f"{where} must be a file path")
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise ProbeConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
    return str(path)


def _read_password(path: str, where: str) -> Secret | None:
    try:
        return read_secret_file(path)
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise ProbeConfigError(f"{where}: cannot read {path}: {reason}") from None


def _duration(value: Any, where: str, default: float) -> float:
    if value is None:
        return default
    try:
        return parse_positive_duration(str(value))
    except ValueError as exc:
        raise ProbeConfigError(f"{where}: {exc}") from None


def _target(name: str, raw: Any, schemes: tuple[str, ...], base: Path) -> ProbeTarget:
    where = f"targets.{name}"
    if not TARGET_NAME.fullmatch(name):
        raise ProbeConfigError(f"{where}: a target name is 1-64 letters, digits, '_', '.', '-'")
    section = _mapping(raw, where)
    for key in section:
        if key not in _TARGET_KEYS:
            raise ProbeConfigError(f"unknown field {where}.{key}")
    text = section.get("address")
    if not isinstance(text, str):
        raise ProbeConfigError(f"{where}.address is required (redis://HOST:PORT/DB)")
    try:
        address = parse_redis_address(text)
    except ValueError as exc:
        raise ProbeConfigError(f"{where}.address: {exc}") from None
    if address.password is not None:
        raise ProbeConfigError(
            f"{where}.address: no password in the address; put it in {where}.password_file"
        )
    if address.scheme not in schemes:
        raise ProbeConfigError(
            f"{where}.address: scheme {address.scheme} is not in allowed_schemes "
            f"({', '.join(schemes)})"
        )
    tls = {}
    for key in ("tls_ca_file", "tls_cert_file", "tls_key_file"):
        if section.get(key) is not None:
            if not address.tls:
                raise ProbeConfigError(f"{where}.{key}: TLS files need a rediss:// address")
            tls[key] = _file(section[key], f"{where}.{key}", base)
    if ("tls_cert_file" in tls) != ("tls_key_file" in tls):
        raise ProbeConfigError(f"{where}: tls_cert_file and tls_key_file go together")
    password = None
    if section.get("password_file") is not None:
        path = _file(section["password_file"], f"{where}.password_file", base)
        password = _read_password(path, f"{where}.password_file")
    username = section.get("username")
    if username is not None and (not isinstance(username, str) or not username.strip()):
        raise ProbeConfigError(f"{where}.username must be a non-empty string")
    caches = []
    for cache_name, prefix in _mapping(section.get("caches"), f"{where}.caches").items():
        try:
            caches.append(parse_cache_prefix(f"{cache_name}={prefix if prefix else ''}"))
        except ValueError as exc:
            raise ProbeConfigError(f"{where}.caches: {exc}") from None
    settings = RedisSettings(
        address=address,
        caches=tuple(caches),
        username=username or address.username,
        password=password,
        connect_timeout=_duration(
            section.get("connect_timeout"),
            f"{where}.connect_timeout",
            DEFAULTS.redis_connect_timeout,
        ),
        socket_timeout=_duration(
            section.get("socket_timeout"), f"{where}.socket_timeout", DEFAULTS.redis_socket_timeout
        ),
        tls_ca_file=tls.get("tls_ca_file"),
        tls_cert_file=tls.get("tls_cert_file"),
        tls_key_file=tls.get("tls_key_file"),
    )
    return ProbeTarget(name=name, settings=settings)


def parse_probe_config(document: Any, base: Path) -> ProbeConfig:
    top = _mapping(document, "the top level")
    for key in top:
        if key not in ("allowed_schemes", "targets"):
            raise ProbeConfigError(f"unknown field {key}")
    raw_schemes = top.get("allowed_schemes", list(SCHEMES))
    if not isinstance(raw_schemes, list) or not raw_schemes:
        raise ProbeConfigError("allowed_schemes must be a non-empty list (redis, rediss)")
    schemes = tuple(str(s) for s in raw_schemes)
    for scheme in schemes:
        if scheme not in SCHEMES:
            raise ProbeConfigError(f"allowed_schemes: {scheme!r} is not one of redis, rediss")
    raw_targets = _mapping(top.get("targets"), "targets")
    if len(raw_targets) > MAX_TARGETS:
        raise ProbeConfigError(f"targets: at most {MAX_TARGETS}")
    targets = {name: _target(name, raw, schemes, base) for name, raw in raw_targets.items()}
    return ProbeConfig(targets=targets, allowed_schemes=schemes)


def load_probe_config(path: str) -> ProbeConfig:
    document = load_yaml_file(path, ProbeConfigError)
    try:
        return parse_probe_config(document, Path(path).resolve().parent)
    except ProbeConfigError as exc:
        raise ProbeConfigError(f"{path}: {exc}") from None
