"""Access control for the exporter's HTTP: the Prometheus exporter-toolkit web configuration.

The same YAML file that secures node_exporter or redis_exporter (``--web.config.file``)
secures cachewatch: ``tls_server_config`` (server certificate, optional client
certificates) and ``basic_auth_users`` (user name -> bcrypt hash). Relative certificate
paths are resolved against the file's directory, as the toolkit does.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .yamlfile import load_yaml_file
from .yamlfile import mapping as _yaml_mapping


class WebConfigError(ValueError):
    """The web configuration file is unreadable or invalid (one line, names the file)."""


CLIENT_AUTH_TYPES: dict[str, ssl.VerifyMode] = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
"""The toolkit's policies that verify what they accept; ``RequestClientCert`` and
``RequireAnyClientCert`` take unverified certificates, which Python's ssl cannot, and which
would authenticate nobody."""

TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
ALLOWED_HEADERS = frozenset(
    {
        "Content-Security-Policy",
        "X-Frame-Options",
        "X-Content-Type-Options",
        "X-XSS-Protection",
        "Strict-Transport-Security",
    }
)
_BCRYPT_HASH = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
_TOP_KEYS = {"tls_server_config", "http_server_config", "basic_auth_users"}
_TLS_KEYS = {
    "cert_file",
    "key_file",
    "client_ca_file",
    "client_auth_type",
    "min_version",
    "max_version",
}
_TLS_UNSUPPORTED = {
    "cert",
    "key",
    "cipher_suites",
    "curve_preferences",
    "prefer_server_cipher_suites",
    "client_allowed_sans",
}
_HTTP_KEYS = {"http2", "headers"}


@dataclass(frozen=True)
class TlsConfig:
    cert_file: str
    key_file: str
    client_ca_file: str | None = None
    client_auth_type: str = "NoClientCert"
    min_version: str = "TLS12"
    max_version: str = "TLS13"

    def context(self) -> ssl.SSLContext:
        """A server-side SSL context; raises WebConfigError when a file cannot be loaded."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = TLS_VERSIONS[self.min_version]
        context.maximum_version = TLS_VERSIONS[self.max_version]
        try:
            context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise WebConfigError(
                f"cannot load cert_file/key_file ({self.cert_file}, {self.key_file}): "
                f"{_reason(exc)}"
            ) from None
        context.verify_mode = CLIENT_AUTH_TYPES[self.client_auth_type]
        if self.client_ca_file:
            try:
                context.load_verify_locations(cafile=self.client_ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise WebConfigError(
                    f"cannot load client_ca_file {self.client_ca_file}: {_reason(exc)}"
                ) from None
        return context


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


@dataclass(frozen=True)
class WebConfig:
    """What the HTTP server enforces: TLS, basic-auth users, extra response headers."""

    tls: TlsConfig | None = None
    users: Mapping[str, bytes] = field(default_factory=dict)
    headers: tuple[tuple[str, str], ...] = ()
    path: str | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"


def _mapping(value: Any, where: str) -> dict[str, Any]:
    return _yaml_mapping(value, where, WebConfigError)


def _check_keys(found: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in found:
        if key in _TLS_UNSUPPORTED:
            raise WebConfigError(f"{where}.{key} is not supported by cachewatch")
        if key not in allowed:
            raise WebConfigError(f"unknown field {where}.{key}")


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise WebConfigError(f"{where} must be a non-empty string")
    return value


def _parse_tls(raw: Any, base: Path) -> TlsConfig | None:
    section = _mapping(raw, "tls_server_config")
    _check_keys(section, _TLS_KEYS, "tls_server_config")
    cert, key = section.get("cert_file"), section.get("key_file")
    ca = section.get("client_ca_file")
    auth = section.get("client_auth_type")
    if not cert and not key:
        if ca or auth:
            raise WebConfigError("tls_server_config: client certificates need cert_file/key_file")
        return None
    if not cert:
        raise WebConfigError("tls_server_config: missing cert_file")
    if not key:
        raise WebConfigError("tls_server_config: missing key_file")
    auth_type = "NoClientCert" if auth is None else _text(auth, "client_auth_type")
    if auth_type not in CLIENT_AUTH_TYPES:
        raise WebConfigError(
            f"tls_server_config.client_auth_type {auth_type!r} is not supported "
            f"(one of: {', '.join(CLIENT_AUTH_TYPES)})"
        )
    if ca and auth_type == "NoClientCert":
        raise WebConfigError(
            "tls_server_config: client_ca_file is set but client_auth_type is NoClientCert"
        )
    if auth_type != "NoClientCert" and not ca:
        raise WebConfigError(
            f"tls_server_config: client_auth_type {auth_type} needs client_ca_file"
        )
    versions = {}
    for name, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        version = section.get(name) or default
        if version not in TLS_VERSIONS:
            raise WebConfigError(
                f"tls_server_config.{name} {version!r} is not supported (TLS12 or TLS13)"
            )
        versions[name] = str(version)
    if TLS_VERSIONS[versions["min_version"]] > TLS_VERSIONS[versions["max_version"]]:
        raise WebConfigError("tls_server_config: min_version is above max_version")

    def resolve(value: Any, where: str) -> str:
        path = Path(_text(value, f"tls_server_config.{where}")).expanduser()
        return str(path if path.is_absolute() else base / path)

    return TlsConfig(
        cert_file=resolve(cert, "cert_file"),
        key_file=resolve(key, "key_file"),
        client_ca_file=resolve(ca, "client_ca_file") if ca else None,
        client_auth_type=auth_type,
        min_version=versions["min_version"],
        max_version=versions["max_version"],
    )


def _parse_users(raw: Any) -> dict[str, bytes]:
    users: dict[str, bytes] = {}
    for user, hashed in _mapping(raw, "basic_auth_users").items():
        if not user or ":" in user:
            raise WebConfigError("basic_auth_users: a user name must be non-empty, without ':'")
        if not isinstance(hashed, str) or not _BCRYPT_HASH.fullmatch(hashed.strip()):
            # Never echo the value: it may be a plain-text password pasted by mistake.
            raise WebConfigError(f"basic_auth_users.{user}: not a bcrypt hash ($2y$..., $2b$...)")
        users[user] = hashed.strip().encode("ascii")
    return users


def _parse_http(raw: Any) -> tuple[tuple[str, str], ...]:
    section = _mapping(raw, "http_server_config")
    _check_keys(section, _HTTP_KEYS, "http_server_config")
    if "http2" in section and not isinstance(section["http2"], bool):
        raise WebConfigError("http_server_config.http2 must be true or false")
    headers = []
    for name, value in _mapping(section.get("headers"), "http_server_config.headers").items():
        canonical = "-".join(part.capitalize() for part in name.split("-"))
        canonical = canonical.replace("Xss", "XSS")
        if canonical not in ALLOWED_HEADERS:
            raise WebConfigError(
                f"http_server_config.headers: {name!r} is not allowed "
                f"(one of: {', '.join(sorted(ALLOWED_HEADERS))})"
            )
        text = str(value)
        if any(c in text for c in "\r\n\0"):
            raise WebConfigError(f"http_server_config.headers.{name}: control characters")
        headers.append((canonical, text))
    return tuple(headers)


def parse_web_config(document: Any, base: Path, path: str | None = None) -> WebConfig:
    top = _mapping(document, "the top level")
    _check_keys(top, _TOP_KEYS, "web config")
    return WebConfig(
        tls=_parse_tls(top.get("tls_server_config"), base),
        users=_parse_users(top.get("basic_auth_users")),
        headers=_parse_http(top.get("http_server_config")),
        path=path,
    )


def load_web_config(path: str) -> WebConfig:
    """Read and check the file, including that certificates and keys load."""
    document = load_yaml_file(path, WebConfigError)
    try:
        config = parse_web_config(document, Path(path).resolve().parent, path)
        if config.tls is not None:
            config.tls.context()
    except WebConfigError as exc:
        raise WebConfigError(f"{path}: {exc}") from None
    return config
