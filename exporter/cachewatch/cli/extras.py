"""The optional extras of the distribution, and the one line that names a missing one.

A command that needs an extra which is not installed (``cachewatch generate`` without
``dashboards``, ``cachewatch serve`` without ``redis``) ends with that line instead of a
ModuleNotFoundError traceback. ``tests/test_extras.py`` checks this table against
pyproject.toml's extras.
"""

from __future__ import annotations

EXTRAS: dict[str, str] = {
    "redis": "redis",
    "grafana_foundation_sdk": "dashboards",
    "opentelemetry": "tracing",
    "opentelemetry.exporter.zipkin": "zipkin",
    "opentelemetry.instrumentation": "instrumentation",
}
"""Module (a package and everything under it) -> the extra that installs it."""


def missing_extra(error: ModuleNotFoundError) -> str | None:
    """The extra whose absence ``error`` is, or None when it is not one of ours; the longest
    module that contains the missing one decides (``opentelemetry.exporter.zipkin`` before
    ``opentelemetry``)."""
    name = error.name or ""
    owners = [m for m in EXTRAS if name == m or name.startswith(m + ".")]
    return EXTRAS[max(owners, key=len)] if owners else None


def missing_extra_message(command: str, extra: str) -> str:
    return (
        f"cachewatch {command} needs the optional '{extra}' extra, which is not installed: "
        f"pip install 'cachewatch[{extra}]'"
    )
