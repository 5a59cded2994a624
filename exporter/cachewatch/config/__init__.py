"""Settings: declared once (``settings``), loaded flags > environment > YAML > defaults
(``load``), handed out in groups (``groups``); the files they name are read by ``files``.
Only this package reads ``CACHEWATCH_*`` and the ``CACHE_*`` threshold variables."""

from .groups import (
    AlertSettings,
    AnalysisSettings,
    BundleSettings,
    DemoSettings,
    RedisSettings,
    TracingOptions,
)
from .load import describe, load_config
from .settings import DEFAULT_PORT, Config, ConfigError, Setting, settings, settings_for
from .values import ListenAddress, format_duration, parse_duration, parse_positive_duration

__all__ = [
    "DEFAULT_PORT",
    "AlertSettings",
    "AnalysisSettings",
    "BundleSettings",
    "Config",
    "ConfigError",
    "DemoSettings",
    "ListenAddress",
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
