"""Settings the library reads from the environment before anything is configured (the cap
on cache names, when the first cache registers; the key hashes of spans and the
instrumentations to turn on, when tracing starts without a ``Config``). An application
must not fail over a monitoring setting: a bad value is logged and the declared default
used."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from .settings import MultiprocessSettings, settings

log = logging.getLogger(__name__)


def library_setting(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """The value of ``Config`` field ``name`` from its environment variable, or its default."""
    meta, default = next((m, d) for field, m, d in settings() if field == name)
    found = meta.environ_value(os.environ if environ is None else environ)
    if found is None:
        return default
    variable, raw = found
    try:
        if meta.multiple:
            return tuple(meta.parse(item.strip()) for item in raw.split(",") if item.strip())
        return meta.parse(raw.strip())
    except ValueError as exc:
        log.warning("%s: %s; using %s", variable, exc, meta.show(default))
        return default


def max_caches(environ: Mapping[str, str] | None = None) -> int:
    """``CACHEWATCH_CACHE_MAX_NAMES``: the cap of the process-wide cache table."""
    return int(library_setting("max_caches", environ))


def tracing_record_keys(environ: Mapping[str, str] | None = None) -> bool:
    """``CACHEWATCH_TRACING_RECORD_KEYS``: whether spans carry a hash of each key."""
    return bool(library_setting("tracing_record_keys", environ))


def tracing_instrument(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """``CACHEWATCH_TRACING_INSTRUMENT``: the OpenTelemetry instrumentations to turn on."""
    return tuple(library_setting("tracing_instrument", environ))


def multiprocess(environ: Mapping[str, str] | None = None) -> MultiprocessSettings | None:
    """``CACHEWATCH_MULTIPROCESS_DIR`` (else ``PROMETHEUS_MULTIPROC_DIR``) and the flush
    interval: multi-process mode's settings, or None when it is off."""
    directory = library_setting("multiprocess_dir", environ)
    if not directory:
        return None
    return MultiprocessSettings(
        multiprocess_dir=str(directory),
        multiprocess_flush_interval=float(library_setting("multiprocess_flush_interval", environ)),
        max_caches=max_caches(environ),
    )
