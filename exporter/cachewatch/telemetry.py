"""OpenTelemetry tracing of cache operations, configured by the standard ``OTEL_*`` variables.

Three rules keep tracing from costing the hot path:

* While tracing is off nothing of OpenTelemetry is imported (the SDK and gRPC add ~14 MiB
  of RSS) and instrumentation pays one check of the module flag ``TRACING``.
* While it is on, cachewatch decides itself whether an operation is recorded, before it
  calls into OpenTelemetry at all (even an unsampled SDK span costs ~6 µs, far more than
  the cache lookup it would wrap): a root operation draws ``random() < ratio``; an
  operation inside an active span follows that span's sampled flag (``sample()``).
* Only a recorded operation creates a span, and its latency observation carries the
  span's trace id as an exemplar.

The SDK side (provider, sampler, exporters) lives in ``_tracing_sdk`` and is imported by
``setup_tracing`` only when the variables turn tracing on.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from ._tracing_sdk import Tracing

log = logging.getLogger(__name__)

# --- attribute names (OpenTelemetry semantic conventions where they exist) -------------------
CACHE_NAME = "cachewatch.cache.name"
CACHE_OPERATION = "cachewatch.cache.operation"
CACHE_HIT = "cachewatch.cache.hit"
CACHE_KEY_HASH = "cachewatch.cache.key.hash"
SOURCE_NAME = "cachewatch.source.name"
SOURCE_UP = "cachewatch.source.up"
DB_SYSTEM = "db.system.name"
DB_OPERATION = "db.operation.name"
DB_NAMESPACE = "db.namespace"
DB_BATCH_SIZE = "db.operation.batch.size"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"

DEFAULT_SERVICE_NAME = "cachewatch"
DEFAULT_OTLP_ENDPOINT = "http://localhost:4317"
SHUTDOWN_TIMEOUT_SECONDS = 2.0
RECORD_KEYS_ENV = "CACHEWATCH_TRACING_RECORD_KEYS"
SUPPORTED_EXPORTERS = ("otlp", "console", "none")
SAMPLERS = {
    # name: (parent rule, root ratio or None when the ratio comes from OTEL_TRACES_SAMPLER_ARG)
    "always_on": ("always", 1.0),
    "always_off": ("never", 0.0),
    "traceidratio": ("trace_id", None),
    "parentbased_always_on": ("follow", 1.0),
    "parentbased_always_off": ("follow", 0.0),
    "parentbased_traceidratio": ("follow", None),
}
DEFAULT_SAMPLER = "parentbased_always_on"

TRACING = False
"""The hot-path flag: True only while a tracer is set up. Instrumentation checks it first."""


def _never() -> bool:
    return False


sample: Callable[[], bool] = _never
"""Whether an operation starting now is recorded as a span. Check ``TRACING`` first: while
tracing is on, ``setup_tracing`` replaces this with a decision of a few hundred nanoseconds
that never calls into OpenTelemetry's span API."""

_state: Tracing | None = None
_lock = threading.Lock()


# --- settings from the environment (pure parsing: no OpenTelemetry import) -------------------
@dataclass(frozen=True)
class TracingSettings:
    """What the ``OTEL_*`` variables ask for, resolved against cachewatch's defaults."""

    enabled: bool
    exporters: tuple[str, ...] = ()
    endpoint: str = DEFAULT_OTLP_ENDPOINT
    timeout_seconds: float = 10.0
    schedule_delay_millis: float = 5000.0
    sampler: str = DEFAULT_SAMPLER
    parent_rule: str = "follow"
    root_ratio: float = 1.0
    resource: Mapping[str, str] = field(default_factory=dict)
    record_keys: bool = False
    warnings: tuple[str, ...] = ()

    @property
    def service_name(self) -> str:
        return self.resource.get("service.name", DEFAULT_SERVICE_NAME)


def _truthy(text: str | None) -> bool:
    return (text or "").strip().lower() in ("1", "true", "yes", "on")


def _parse_resource(text: str, warnings: list[str]) -> dict[str, str]:
    """``key1=value1,key2=value2`` with percent-encoded values (the spec's W3C baggage form)."""
    found: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            warnings.append(f"OTEL_RESOURCE_ATTRIBUTES: ignored malformed item {item.strip()!r}")
            continue
        found[key.strip()] = unquote(value.strip())
    return found


def tracing_settings(
    environ: Mapping[str, str] | None = None,
    *,
    record_keys: bool | None = None,
    service_name: str = DEFAULT_SERVICE_NAME,
) -> TracingSettings:
    """Read the standard variables. Tracing is on when the SDK is not disabled and either
    ``OTEL_TRACES_EXPORTER`` names an exporter or an OTLP endpoint variable is set; an unset
    exporter with no endpoint means off, so a plain ``cachewatch serve`` never dials a
    collector that is not there. Mistakes are warnings with a fallback, as the spec says."""
    env = os.environ if environ is None else environ
    warnings: list[str] = []
    if record_keys is None:
        record_keys = _truthy(env.get(RECORD_KEYS_ENV))
    if _truthy(env.get("OTEL_SDK_DISABLED")):
        return TracingSettings(enabled=False, record_keys=record_keys)

    endpoint = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    )
    raw_exporters = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if raw_exporters:
        names = [name.strip() for name in raw_exporters.split(",") if name.strip()]
    else:
        names = ["otlp"] if endpoint else ["none"]
    exporters: list[str] = []
    for name in names:
        if name not in SUPPORTED_EXPORTERS:
            warnings.append(
                f"OTEL_TRACES_EXPORTER: unsupported exporter {name!r} ignored "
                f"(cachewatch supports {', '.join(SUPPORTED_EXPORTERS)})"
            )
        elif name != "none" and name not in exporters:
            exporters.append(name)
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    ).strip()
    if "otlp" in exporters and protocol and protocol != "grpc":
        warnings.append(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: cachewatch sends OTLP over gRPC")

    timeout = 10.0
    raw_timeout = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") or env.get("OTEL_EXPORTER_OTLP_TIMEOUT", "")
    ).strip()
    if raw_timeout:
        try:
            # The spec gives milliseconds; the Python SDK has long read seconds. A value
            # above 120 can only mean milliseconds.
            timeout = float(raw_timeout)
            timeout = timeout / 1000 if timeout > 120 else timeout
        except ValueError:
            warnings.append(f"OTEL_EXPORTER_OTLP_TIMEOUT: invalid number {raw_timeout!r}")

    delay = 5000.0
    raw_delay = env.get("OTEL_BSP_SCHEDULE_DELAY", "").strip()
    if raw_delay:
        try:
            delay = max(1.0, float(raw_delay))
        except ValueError:
            warnings.append(f"OTEL_BSP_SCHEDULE_DELAY: invalid number {raw_delay!r}")

    sampler = env.get("OTEL_TRACES_SAMPLER", "").strip().lower() or DEFAULT_SAMPLER
    if sampler not in SAMPLERS:
        warnings.append(f"OTEL_TRACES_SAMPLER: unsupported sampler {sampler!r}, using default")
        sampler = DEFAULT_SAMPLER
    parent_rule, ratio = SAMPLERS[sampler]
    if ratio is None:
        ratio = 1.0
        raw_arg = env.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
        if raw_arg:
            try:
                ratio = float(raw_arg)
                if not 0.0 <= ratio <= 1.0:
                    raise ValueError
            except ValueError:
                warnings.append(f"OTEL_TRACES_SAMPLER_ARG: invalid ratio {raw_arg!r}, using 1.0")
                ratio = 1.0

    resource = {"service.name": service_name}
    resource.update(_parse_resource(env.get("OTEL_RESOURCE_ATTRIBUTES", ""), warnings))
    if env.get("OTEL_SERVICE_NAME", "").strip():
        resource["service.name"] = env["OTEL_SERVICE_NAME"].strip()

    enabled = bool(exporters) and sampler != "always_off"
    return TracingSettings(
        enabled=enabled,
        exporters=tuple(exporters),
        endpoint=endpoint or DEFAULT_OTLP_ENDPOINT,
        timeout_seconds=timeout,
        schedule_delay_millis=delay,
        sampler=sampler,
        parent_rule=parent_rule,
        root_ratio=ratio,
        resource=resource,
        record_keys=record_keys,
        warnings=tuple(warnings),
    )


# --- lifecycle -------------------------------------------------------------------------------
def setup_tracing(
    environ: Mapping[str, str] | None = None,
    *,
    record_keys: bool | None = None,
    service_name: str = DEFAULT_SERVICE_NAME,
    set_global: bool = True,
) -> Tracing | None:
    """Turn tracing on as the ``OTEL_*`` variables say; None (and nothing imported) when
    they leave it off. Idempotent: while tracing is on, returns the running tracer.

    ``set_global`` also installs the provider as OpenTelemetry's global one when the
    application has not installed its own, so the application's spans go the same way.
    """
    global _state, TRACING, sample
    with _lock:
        if _state is not None:
            return _state
        settings = tracing_settings(environ, record_keys=record_keys, service_name=service_name)
        for warning in settings.warnings:
            log.warning("%s", warning)
        if not settings.enabled:
            return None
        try:
            from ._tracing_sdk import Tracing
        except ImportError as exc:
            log.warning(
                "tracing is asked for by OTEL_* but cannot start (%s): "
                "pip install 'cachewatch[tracing]'",
                exc,
            )
            return None
        state = Tracing(settings, set_global=set_global)
        _state = state
        sample = state.decide
        TRACING = True
    log.info(
        "tracing on: exporters=%s endpoint=%s sampler=%s ratio=%s service=%s",
        ",".join(settings.exporters), settings.endpoint, settings.sampler,
        settings.root_ratio, settings.service_name,
    )  # fmt: skip
    return state


def shutdown_tracing(timeout: float = SHUTDOWN_TIMEOUT_SECONDS) -> None:
    """Flush what is queued and stop, within ``timeout`` seconds even when the collector is
    gone. Safe to call when tracing is off or already stopped."""
    global _state, TRACING, sample
    with _lock:
        state = _state
        if state is None:
            return
        TRACING = False
        sample = _never
        _state = None
    state.shutdown(timeout)


def active() -> Tracing | None:
    """The running tracer, or None while tracing is off."""
    return _state


atexit.register(shutdown_tracing)


# --- span helpers (call only after ``TRACING and sample()`` said yes) ------------------------
def key_hash(key: object) -> str:
    """A short SHA-256 of a cache key: lets traces correlate one key without showing it."""
    data = key if isinstance(key, bytes) else str(key).encode("utf-8", "backslashreplace")
    return hashlib.sha256(data).hexdigest()[:16]


def cache_attributes(cache: str, operation: str, key: object = None) -> dict[str, Any]:
    """The attributes every cache-operation span carries; the key only as a hash, and only
    when the user opted in (``--tracing.record-keys`` / ``CACHEWATCH_TRACING_RECORD_KEYS``)."""
    attributes: dict[str, Any] = {CACHE_NAME: cache, CACHE_OPERATION: operation}
    state = _state
    if key is not None and state is not None and state.settings.record_keys:
        attributes[CACHE_KEY_HASH] = key_hash(key)
    return attributes


def start_span(
    name: str, attributes: Mapping[str, Any], *, client: bool = False, current: bool = False
) -> Span | None:
    """Start a span that the caller already decided to record (None if tracing stopped
    meanwhile). ``current`` makes it the active span until it ends, so that what runs
    inside (a Redis call in a ``trace_cache_operation`` block) becomes its child."""
    state = _state
    if state is None:
        return None
    return Span(state, state.start(name, attributes, client=client), current)


class Span:
    """A recorded span with what cachewatch needs of it: exemplar id, outcome, end."""

    __slots__ = ("_span", "_state", "_token", "trace_id")

    def __init__(self, state: Tracing, span: Any, current: bool) -> None:
        self._state = state
        self._span = span
        self.trace_id: str = format(span.get_span_context().trace_id, "032x")
        self._token = state.attach(span) if current else None

    def set(self, key: str, value: Any) -> None:
        self._span.set_attribute(key, value)

    def fail(self, description: str) -> None:
        """Mark the span failed without an exception (e.g. a source that reported down)."""
        self._state.mark_failed(self._span, description)

    def end(self, exc: BaseException | None = None) -> None:
        """End the span; an exception is recorded as an event, ``error.type`` and error
        status."""
        span = self._span
        if exc is not None:
            self._state.record_error(span, exc)
        if self._token is not None:
            self._state.detach(self._token)
            self._token = None
        span.end()

    def __enter__(self) -> Span:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.end(exc)


def trace_poll(source: str) -> Span | None:
    """A span for one poll of a source, when this poll is sampled."""
    if not (TRACING and sample()):
        return None
    return start_span(f"poll {source}", {SOURCE_NAME: source})
