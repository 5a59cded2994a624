"""Settings: declared once and handed out in groups (``settings``), loaded flags >
environment > YAML > defaults (``load``); the files they name are read by ``files``.
Only this package reads ``CACHEWATCH_*`` and the ``CACHE_*`` threshold variables."""

from .load import describe, load_config
from .redis import RedisSettings
from .settings import (
    DEFAULT_PORT,
    AlertSettings,
    AnalysisSettings,
    BundleSettings,
    Config,
    ConfigError,
    DemoSettings,
    LinkSettings,
    MultiprocessSettings,
    Setting,
    TracingOptions,
    settings,
    settings_for,
)
from .values import ListenAddress, format_duration, parse_duration, parse_positive_duration

__all__ = [
    "DEFAULT_PORT",
    "AlertSettings",
    "AnalysisSettings",
    "BundleSettings",
    "Config",
    "ConfigError",
    "DemoSettings",
    "LinkSettings",
    "ListenAddress",
    "MultiprocessSettings",
    "RedisSettings",
    "Setting",
    "TracingOptions",
    "describe",
    "format_duration",
    "load_config",
    "parse_duration",
    "parse_positive_duration",
    "settings",
    "settings_for",
]
