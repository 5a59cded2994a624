"""cachewatch: per-cache Prometheus metrics, trends, alerts and traces for Python caches.

Embedded use::

    import cachewatch
    cache = cachewatch.instrument(cachetools.LRUCache(10_000), "embedding_cache")
    cachewatch.start_http_server(10287)

This module is the public API only; ``docs/architecture.md`` is the map of the package.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__
from .config import environment
from .config.webconfig import load_web_config
from .exporter import Exporter, embedded_exporter
from .instrument import flusher
from .instrument.lru import watch_lru
from .instrument.mapping import InstrumentedMapping, instrument
from .instrument.operation import CacheOperation, trace_cache_operation
from .instrument.recorder import CacheRecorder
from .instrument.redis_py import instrument_redis
from .instrument.table import CacheTable, cache_metrics, default_table
from .tracing.spans import setup_tracing, shutdown_tracing
from .web.routes import WSGIApp
from .web.routes import make_wsgi_app as _make_wsgi_app
from .web.server import HttpServer, serve

CacheRegistry = CacheTable
"""The table of logical caches, under its public name."""
default_registry = default_table
"""The process-wide table of logical caches, under its public name."""

__all__ = [
    "CacheOperation",
    "CacheRecorder",
    "CacheRegistry",
    "Exporter",
    "HttpServer",
    "InstrumentedMapping",
    "WSGIApp",
    "__version__",
    "cache_metrics",
    "configure_alert_threshold",
    "default_registry",
    "embedded_exporter",
    "enable_otel_metrics",
    "flush",
    "instrument",
    "instrument_redis",
    "make_wsgi_app",
    "mark_process_dead",
    "serve",
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
    port: int,
    addr: str = "127.0.0.1",
    exporter: Exporter | None = None,
    web_config_file: str | None = None,
) -> HttpServer:
    """Serve cachewatch's endpoints from a background thread; returns the running server.

    ``web_config_file`` (default: ``$CACHEWATCH_WEB_CONFIG_FILE``, which the embedded
    exporter reads) is an exporter-toolkit web configuration: TLS and basic auth, as for
    ``cachewatch serve --web.config.file``. In multi-process mode every worker may call it
    with the same port: they share it, each answering with the aggregate of all.
    """
    exporter = exporter or embedded_exporter()
    web_config = load_web_config(web_config_file) if web_config_file else exporter.web_config
    server = serve(
        make_wsgi_app(exporter), addr, port, web_config, shared_port=exporter.shared_port
    )
    exporter.reload_on_sighup()
    return server


def configure_alert_threshold(
    alert: str,
    threshold: float | None,
    *,
    severity: str = "warning",
    cache: str | None = None,
    escalation: bool | None = None,
    exporter: Exporter | None = None,
) -> None:
    """Change an alert's threshold while the application runs, for one ``cache`` or (None)
    for every cache; ``threshold`` is in the unit of the alert's signal (bytes, seconds, a
    ratio), as ``cachewatch_alert_threshold`` shows it, and None sets it back to the
    configured one. ``escalation`` turns the escalation of the alert's warning to critical
    on or off (None leaves it).

    The exporter's alert states, ``cachewatch_alert_threshold`` and /alerts follow at once,
    and so do the generated Prometheus rules, which compare against that series. A value set
    here stays in force over the configuration file across reloads. Raises ValueError,
    changing nothing, for an unknown alert or severity or a value its setting would refuse.
    """
    (exporter or embedded_exporter()).configure_alert_threshold(
        alert, threshold, severity=severity, cache=cache, escalation=escalation
    )


def enable_otel_metrics(exporter: Exporter | None = None, **options: Any) -> Any:
    """Serve metrics recorded through the OpenTelemetry metrics API on cachewatch's /metrics
    (see ``cachewatch.tracing.otel_metrics``; loads the OpenTelemetry SDK, so only on
    request). Returns the bridge, whose ``meter()`` records into it."""
    return (exporter or embedded_exporter()).enable_otel_metrics(**options)


def mark_process_dead(pid: int, directory: str | None = None) -> None:
    """Multi-process mode: process ``pid`` has ended, so its caches' entries and memory leave
    the aggregate at once (its counters stay). For gunicorn's ``child_exit`` hook; without
    it, a dead process is still recognised, a little later. ``directory`` defaults to the
    multi-process directory of the environment; a no-op when there is none. Never raises."""
    if directory is None:
        settings = environment.multiprocess()
        if settings is None:
            return
        directory = settings.multiprocess_dir
    flusher.mark_process_dead(pid, directory)


def flush(exiting: bool = False) -> bool:
    """Multi-process mode: write this process's caches to its file now, rather than at the
    next flush interval. ``exiting=True`` from a hook that runs as a process ends where
    ``atexit`` does not (Celery's ``worker_process_shutdown``): its file then says the process
    is gone. Returns whether a file was written (False outside multi-process mode)."""
    return flusher.flush(exiting=exiting)
