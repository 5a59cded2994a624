"""cachewatch: per-cache Prometheus metrics, trends, alerts and traces for Python caches.

Embedded use::

    import cachewatch
    cache = cachewatch.instrument(cachetools.LRUCache(10_000), "embedding_cache")
    cachewatch.start_http_server(10287)
"""

from __future__ import annotations

from typing import Any

from ._version import __version__
from .app import Exporter, embedded_exporter
from .instrument import (
    CacheOperation,
    InstrumentedMapping,
    cache_metrics,
    instrument,
    trace_cache_operation,
    watch_lru,
)
from .recorder import CacheRecorder
from .redis_client import instrument_redis
from .registry import CacheRegistry, default_registry
from .server import HttpServer, WSGIApp, serve
from .server import make_wsgi_app as _make_wsgi_app
from .telemetry import setup_tracing, shutdown_tracing

__all__ = [
    "CacheOperation",
    "CacheRecorder",
    "CacheRegistry",
    "Exporter",
    "HttpServer",
    "InstrumentedMapping",
    "__version__",
    "cache_metrics",
    "default_registry",
    "embedded_exporter",
    "enable_otel_metrics",
    "instrument",
    "instrument_redis",
    "make_wsgi_app",
    "setup_tracing",
    "shutdown_tracing",
    "start_http_server",
    "trace_cache_operation",
    "watch_lru",
]


def make_wsgi_app(exporter: Exporter | None = None) -> WSGIApp:
    """cachewatch's endpoints (/, /metrics, /health, ...) as a WSGI app to mount anywhere."""
    return _make_wsgi_app(exporter or embedded_exporter())


def start_http_server(
    port: int, addr: str = "127.0.0.1", exporter: Exporter | None = None
) -> HttpServer:
    """Serve cachewatch's endpoints from a background thread; returns the running server."""
    return serve(make_wsgi_app(exporter), addr, port)


def enable_otel_metrics(exporter: Exporter | None = None, **options: Any) -> Any:
    """Serve metrics recorded through the OpenTelemetry metrics API on cachewatch's /metrics
    (see ``cachewatch.otel_metrics``; loads the OpenTelemetry SDK, so only on request)."""
    from .otel_metrics import enable_otel_metrics as enable

    return enable(exporter, **options)
