"""OpenTelemetry tracing of cache operations, configured by the standard ``OTEL_*`` variables.

Three rules keep tracing from costing the hot path:

* While tracing is off nothing of OpenTelemetry is imported (the SDK and gRPC add ~14 MiB
  of RSS) and instrumentation pays one check of the module flag ``TRACING``.
* While it is on, cachewatch decides itself whether an operation is recorded, before it
  calls into OpenTelemetry at all (even an unsampled SDK span costs ~6 µs, far more than
  the cache lookup it would wrap): a root operation draws ``random() < ratio``; an
  operation inside an active span follows that span's sampled flag (``sample()``). The
  ``instrument()`` mapping counts its root lookups down to the next recorded one instead,
  the count drawn from the same distribution (``root_sampling``).
* Only a recorded operation creates a span, and its latency observation carries the
  span's trace id as an exemplar.

Spans go through the application's tracer provider when it has set one as OpenTelemetry's
global (``application``), through cachewatch's own pipeline otherwise (``pipeline``). The
SDK side lives in those modules and ``sdk``, imported by ``setup_tracing`` only when
tracing is asked for; the variables are read by ``settings``.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple

from ..config import environment
from .attributes import CACHE_KEY_HASH, CACHE_NAME, CACHE_OPERATION, SOURCE_NAME
from .settings import DEFAULT_SERVICE_NAME, TracingSettings, tracing_settings

if TYPE_CHECKING:
    from .sdk import Tracing

log = logging.getLogger("cachewatch.tracing")

SHUTDOWN_TIMEOUT_SECONDS = 2.0

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
_listeners: list[Callable[[bool], None]] = []


def on_toggle(listener: Callable[[bool], None]) -> None:
    """Call ``listener(True)`` when tracing starts and ``listener(False)`` when it stops (and
    at once with the current state), so that a hot path can keep a cheaper check of its own
    than ``TRACING and sample()`` on every operation (``instrument.gate``)."""
    with _lock:
        _listeners.append(listener)
        listener(TRACING)


def _toggled(on: bool) -> None:
    for listener in _listeners:
        listener(on)


# --- lifecycle -------------------------------------------------------------------------------
def setup_tracing(
    environ: Mapping[str, str] | None = None,
    *,
    record_keys: bool | None = None,
    service_name: str = DEFAULT_SERVICE_NAME,
    set_global: bool = True,
    tracer_provider: Any = None,
    instrument: Sequence[str] | None = None,
) -> Tracing | None:
    """Turn tracing on; None (and nothing imported) when it is not asked for. Idempotent:
    while tracing is on, returns the running tracer.

    Which way the spans go:

    * ``tracer_provider`` given: through it (the application's, handed over explicitly);
    * else, when the ``OTEL_*`` variables ask for tracing and the application has set an
      SDK ``TracerProvider`` as OpenTelemetry's global one (``opentelemetry-instrument``
      does): through that one, with its exporters, resource and sampler;
    * else, when the variables name an exporter cachewatch supports: through cachewatch's
      own pipeline. ``set_global`` also installs its provider as the global one when the
      application has none, so the application's spans go the same way.

    ``instrument`` names OpenTelemetry instrumentations to turn on with it (``requests``,
    ``urllib3``; default: ``CACHEWATCH_TRACING_INSTRUMENT``), undone by ``shutdown_tracing``.
    """
    global _state, TRACING, sample
    with _lock:
        if _state is not None:
            return _state
        settings = tracing_settings(environ, record_keys=record_keys, service_name=service_name)
        if tracer_provider is None and not settings.requested:
            for warning in settings.warnings:
                log.warning("%s", warning)
            return None
        try:
            state = _start(settings, tracer_provider, set_global)
        except ImportError as exc:
            log.warning(
                "tracing is asked for by OTEL_* but cannot start (%s): "
                "pip install 'cachewatch[tracing]'",
                exc,
            )
            return None
        if state is None:
            return None
        libraries = environment.tracing_instrument(environ) if instrument is None else instrument
        if libraries:
            from .instrumentation import instrument_libraries

            instrument_libraries(state, libraries)
        _state = state
        sample = state.decide
        TRACING = True
        _toggled(True)
    settings = state.settings
    if state.owns_pipeline:
        log.info(
            "tracing on: exporters=%s endpoint=%s sampler=%s ratio=%s service=%s",
            ",".join(settings.exporters), _endpoints(settings), settings.sampler,
            settings.root_ratio, settings.service_name,
        )  # fmt: skip
    else:
        log.info(
            "tracing on through the application's tracer provider: sampler=%s service=%s",
            settings.sampler, settings.service_name,
        )  # fmt: skip
    return state


def _start(settings: TracingSettings, provider: Any, set_global: bool) -> Tracing | None:
    """The running tracer on the provider chosen as ``setup_tracing`` says."""
    from .application import application_provider, join

    if provider is None:
        provider = application_provider()
    if provider is not None:
        return join(provider, settings)
    for warning in settings.warnings:
        log.warning("%s", warning)
    if not settings.enabled:
        return None
    from .pipeline import start_own

    return start_own(settings, set_global=set_global)


def _endpoints(settings: TracingSettings) -> str:
    found = {"otlp": settings.endpoint, "zipkin": settings.zipkin_endpoint}
    return ",".join(found[name] for name in settings.exporters if name in found) or "none"


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
        _toggled(False)
    state.shutdown(timeout)


def active() -> Tracing | None:
    """The running tracer, or None while tracing is off."""
    return _state


class RootSampling(NamedTuple):
    """What a hot path needs to decide root operations without calling ``sample()`` on each,
    and to record one in the fewest calls."""

    read: Callable[[], object]
    empty: object
    """``read() is empty`` when no context was attached in this thread or task: no span is
    active, the operation is a root."""
    gap: Callable[[], int]
    """The number of root operations from now to the next recorded one (0: none ever is),
    drawn so that each is recorded with the probability ``sample()`` gives a root."""
    record: Callable[..., int | None]
    """``record_span`` of the running tracer, without the check that tracing is on."""
    every: bool
    """Every root operation is recorded (``gap`` is always 1)."""


def root_sampling() -> RootSampling | None:
    """None while tracing is off or when OpenTelemetry's runtime context is not its default
    one (then every operation asks ``sample()``)."""
    state = _state
    if state is None or state.root_probe is None:
        return None
    read, empty = state.root_probe
    return RootSampling(read, empty, state.root_gap, state.record, state.every_root)


def records_keys() -> bool:
    """Whether spans carry a hash of the key (``cache_attributes``)."""
    state = _state
    return state is not None and state.settings.record_keys


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


def record_span(
    name: str,
    attributes: Mapping[str, Any],
    start_ns: int,
    end_ns: int,
    exc: BaseException | None = None,
    root: bool = False,
) -> int | None:
    """Record a span that already happened (a lookup timed by the caller), in one SDK call
    for its start and one for its end: nothing can run inside an in-process lookup, so it
    never needs to be the active span. Returns its trace id for the exemplar (an int, which
    the exemplar formats when read), None when tracing stopped meanwhile or the SDK sampler
    declined. ``root``: the caller saw that no span is active (``root_sampling``)."""
    state = _state
    if state is None:
        return None
    return state.record(name, attributes, start_ns, end_ns, exc, root)


class Span:
    """A recorded span with what cachewatch needs of it: exemplar id, outcome, end."""

    __slots__ = ("_span", "_state", "_token", "trace_id")

    def __init__(self, state: Tracing, span: Any, current: bool) -> None:
        self._state = state
        self._span = span
        self.trace_id: str | None = (
            format(span.get_span_context().trace_id, "032x") if span.is_recording() else None
        )
        """The trace id for exemplars; None when the SDK sampler declined to record it."""
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
