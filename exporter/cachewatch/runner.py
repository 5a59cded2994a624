"""Assembling a running process from a Config: which sources, which endpoints, how to stop."""

from __future__ import annotations

import dataclasses
import gc
import logging

from . import telemetry
from .analysis.attach import attach_analysis
from .app import Exporter
from .config import Config, ConfigError
from .demo import DemoRunner, DemoWorkload
from .errors import UserFacingError
from .logs import setup_logging
from .registry import CacheRegistry
from .service import ListenError, run_until_stopped
from .sources import Source
from .sources.local import LocalSource
from .webconfig import WebConfigError, load_web_config

log = logging.getLogger(__name__)


def assemble(config: Config, exporter: Exporter) -> Exporter:
    """Attach what every mode shares (analysis, tracing) to an exporter. One place to extend."""
    if config.web_config_file:
        try:
            exporter.web_config = load_web_config(config.web_config_file)
        except WebConfigError as exc:
            raise ConfigError(f"--web.config.file: {exc}") from None
    if config.probe_config_file:
        from .probe import ProbeConfigError, Prober, load_probe_config

        try:
            probe_config = load_probe_config(config.probe_config_file)
        except ProbeConfigError as exc:
            raise ConfigError(f"--probe.config.file: {exc}") from None
        prober = Prober(probe_config, config.redis_census_keys, config.redis_census_samples)
        exporter.add_wsgi_route("/probe", "scrape a configured Redis target: ?target=NAME", prober)
        exporter.on_close(prober.close)
    attach_analysis(exporter, config)
    _attach_tracing(config, exporter)
    return exporter


def _attach_tracing(config: Config, exporter: Exporter) -> None:
    """Tracing from the OTEL_* variables (nothing is imported when they leave it off), and
    the OpenTelemetry metrics bridge when asked for; both stop with the exporter."""
    if telemetry.setup_tracing(record_keys=config.tracing_record_keys) is not None:
        exporter.on_close(telemetry.shutdown_tracing)
    if config.otel_metrics_bridge:
        from .otel_metrics import enable_otel_metrics

        enable_otel_metrics(exporter, scope_labels=config.otel_metrics_scope_labels)


DEMO_TIME_COMPRESSION = 20.0
"""The demo compresses the analysis's durations left at their defaults by this times its
speed, so that alerts pend, fire, escalate and resolve within the demo's phases."""
_DEMO_SCALED = {
    # setting: least multiple of the sample interval it may shrink to
    "trend_window": 20.0,
    "alert_rate_window": 4.0,
    "alert_for_seconds": 2.0,
    "alert_escalate_after_seconds": 4.0,
    "alert_notify_cooldown_seconds": 0.0,
}


def demo_analysis_config(config: Config) -> Config:
    """The demo's analysis settings: defaults compressed, explicit settings kept as given."""
    factor = DEMO_TIME_COMPRESSION * max(config.demo_speed, 0.01)
    defaults = Config()
    changes = {
        name: max(floor * config.sample_interval, getattr(defaults, name) / factor)
        for name, floor in _DEMO_SCALED.items()
        if getattr(config, name) == getattr(defaults, name)
    }
    if changes:
        log.info(
            "demo: analysis durations compressed %gx: %s",
            factor,
            " ".join(f"{name}={value:g}s" for name, value in changes.items()),
        )
    return dataclasses.replace(config, **changes)


def run_demo(config: Config) -> int:
    setup_logging(config.log_level, config.log_format)
    config = demo_analysis_config(config)
    registry = CacheRegistry(max_caches=config.max_caches)
    exporter = assemble(config, Exporter([LocalSource(registry)], cache_registry=registry))
    workload = DemoWorkload(seed=config.seed, speed=config.demo_speed, registry=registry)
    runner = DemoRunner(workload)
    exporter.on_close(runner.stop)
    runner.start()
    try:
        return run_until_stopped(
            exporter, config.web_listen_address, duration=config.duration, status=workload.summary
        )
    except ListenError as exc:
        exporter.close()
        raise UserFacingError(str(exc)) from None


def run_serve(config: Config) -> int:
    """The standalone exporter: one Redis server (stats and logical caches) plus this process."""
    if config.redis_addr is None and not config.probe_config_file:
        raise ConfigError(
            "--redis.addr: required by serve (e.g. --redis.addr redis://localhost:6379/0), "
            "unless --probe.config.file names the targets of /probe"
        )
    from .sources.redis import RedisSettings, RedisSource

    setup_logging(config.log_level, config.log_format)
    registry = CacheRegistry(max_caches=config.max_caches)
    sources: list[Source] = [LocalSource(registry)]
    if config.redis_addr is not None:
        settings = RedisSettings.from_config(config)
        sources.insert(0, RedisSource(settings))
        caches = ", ".join(str(cache) for cache in settings.caches) or "none"
        log.info("watching redis %s; logical caches: %s", settings.address, caches)
    exporter = assemble(config, Exporter(sources, cache_registry=registry))
    # Startup objects live forever: keep them out of the collector's full passes, which would
    # otherwise walk them every few hundred scrapes (a latency spike each time).
    gc.freeze()
    try:
        return run_until_stopped(exporter, config.web_listen_address)
    except ListenError as exc:
        exporter.close()
        raise UserFacingError(str(exc)) from None
