"""The probes, as Prometheus has them: ``/-/healthy`` (the process answers) and ``/-/ready``
(every source has been polled and its last poll worked).

A Kubernetes liveness probe reads ``/-/healthy``: it fails only when the process no longer
serves, which a restart cures. A readiness probe or a load balancer reads ``/-/ready``. Both
answer without basic auth (kubelet and load balancers cannot keep a password out of the
manifest; see prometheus/prometheus#9166) and so say nothing but ready or not, and which
sources are not: ``/health`` keeps the detail, behind the auth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .routes import StartResponse, WSGIApp, respond

HEALTHY, READY = "/-/healthy", "/-/ready"
PATHS = frozenset({HEALTHY, READY})
"""The paths that answer without authentication."""

Readiness = Callable[[], tuple[bool, str]]
"""Returns (ready, why not)."""


def healthy_app() -> WSGIApp:
    def app(_environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        return respond(start_response, "200 OK", b"cachewatch is Healthy.\n", "text/plain")

    return app


def ready_app(readiness: Readiness) -> WSGIApp:
    def app(_environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        ready, why = readiness()
        if ready:
            return respond(start_response, "200 OK", b"cachewatch is Ready.\n", "text/plain")
        body = f"cachewatch is not ready: {why}\n".encode()
        return respond(start_response, "503 Service Unavailable", body, "text/plain")

    return app
