"""Assembling a running process from a Config: which sources, which endpoints, how to stop."""

from __future__ import annotations

from .app import Exporter
from .config import Config, ConfigError
from .demo import DemoRunner, DemoWorkload
from .errors import UserFacingError
from .logs import setup_logging
from .registry import CacheRegistry
from .service import ListenError, run_until_stopped
from .sources.local import LocalSource
from .webconfig import WebConfigError, load_web_config


def assemble(config: Config, exporter: Exporter) -> Exporter:
    """Attach what every mode shares (analysis, tracing) to an exporter. One place to extend."""
    if config.web_config_file:
        try:
            exporter.web_config = load_web_config(config.web_config_file)
        except WebConfigError as exc:
            raise ConfigError(f"--web.config.file: {exc}") from None
    return exporter


def run_demo(config: Config) -> int:
    setup_logging(config.log_level, config.log_format)
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
