"""HTTP basic authentication against bcrypt hashes, cheap enough to check on every scrape.

bcrypt costs tens of milliseconds by design; Prometheus sends the same credentials every
scrape, so verdicts are cached under an HMAC of (user, hash, password) with a per-process
key: the cache never holds a password, and a cache lookup reveals nothing about one. Unknown
users are checked against a dummy hash so that timing does not tell which users exist, and
bcrypt runs one at a time so that a flood of wrong passwords costs one core at most.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

import bcrypt

from ..config.webconfig import WebConfig
from .routes import StartResponse, WSGIApp, respond

log = logging.getLogger(__name__)

CACHE_SIZE = 256
_DUMMY_HASH = b"$2b$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """(user, password) from an ``Authorization: Basic ...`` header, or None if malformed."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token.strip() or len(token) > 4096:
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(":")
    if not colon:
        return None
    return user, password


class BasicAuth:
    """Checks credentials against ``users`` (name -> bcrypt hash)."""

    def __init__(self, users: Mapping[str, bytes], cache_size: int = CACHE_SIZE) -> None:
        self._users = dict(users)
        self._key = os.urandom(32)
        self._cache: OrderedDict[bytes, bool] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._bcrypt_lock = threading.Lock()

    def _hash_for(self, user: str) -> tuple[bytes, bool]:
        """The user's hash, found by comparing every name in constant time."""
        wanted = user.encode("utf-8", "surrogatepass")
        found, known = _DUMMY_HASH, False
        for name, hashed in self._users.items():
            if hmac.compare_digest(name.encode("utf-8"), wanted):
                found, known = hashed, True
        return found, known

    def check(self, header: str | None) -> str | None:
        """The authenticated user name, or None."""
        credentials = parse_basic(header)
        if credentials is None:
            return None
        user, password = credentials
        hashed, known = self._hash_for(user)
        secret = password.encode("utf-8", "surrogatepass")
        digest = hmac.new(
            self._key, b"\0".join((user.encode("utf-8", "surrogatepass"), hashed, secret)),
            hashlib.sha256,
        ).digest()  # fmt: skip
        with self._lock:
            verdict = self._cache.get(digest)
            if verdict is not None:
                self._cache.move_to_end(digest)
        if verdict is None:
            with self._bcrypt_lock:
                try:
                    verdict = bcrypt.checkpw(secret, hashed) and known
                except ValueError:
                    verdict = False
            with self._lock:
                self._cache[digest] = verdict
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return user if verdict else None


def protect(
    app: WSGIApp, web_config: WebConfig, open_paths: Iterable[str] = frozenset()
) -> WSGIApp:
    """``app`` behind the web configuration's basic auth, with its extra response headers;
    ``open_paths`` (the probes) answer without credentials."""
    unguarded = frozenset(open_paths)
    auth = BasicAuth(web_config.users) if web_config.users else None
    extra = list(web_config.headers)

    def protected(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, headers + extra, exc_info)

        if (
            auth is not None
            and environ.get("PATH_INFO") not in unguarded
            and auth.check(environ.get("HTTP_AUTHORIZATION")) is None
        ):
            log.debug("basic auth failed from %s", environ.get("REMOTE_ADDR", "?"))
            return respond(
                start,
                "401 Unauthorized",
                b"unauthorized\n",
                "text/plain",
                [("WWW-Authenticate", 'Basic realm="cachewatch", charset="UTF-8"')],
            )
        return app(environ, start)

    return protected
