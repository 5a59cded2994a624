"""Opt-in OpenTelemetry instrumentation of HTTP clients (``--tracing.instrument``), so that a
trace shows what an application did after a cache miss: the ``GET search_cache`` span with
``cachewatch.cache.hit=false``, then the HTTP call to the backend that filled the gap.

OpenTelemetry's own instrumentation packages do the work (opentelemetry-instrumentation-
requests and -urllib3, the ``instrumentation`` extra), on the tracer provider cachewatch's
spans go through. A library that is already instrumented (``opentelemetry-instrument``
instruments every installed one) is left as it is; what cachewatch instrumented it undoes
when tracing stops. Imported only when tracing is on and an instrumentation is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from .sdk import Tracing, log

INSTRUMENTORS = {
    "requests": ("opentelemetry.instrumentation.requests", "RequestsInstrumentor"),
    "urllib3": ("opentelemetry.instrumentation.urllib3", "URLLib3Instrumentor"),
}
"""Library name -> (module, class) of its OpenTelemetry instrumentor."""


def instrument_libraries(state: Tracing, libraries: Sequence[str]) -> list[str]:
    """Instrument ``libraries`` on ``state``'s provider; returns those cachewatch did."""
    done: list[str] = []
    for library in dict.fromkeys(libraries):
        if library not in INSTRUMENTORS:
            log.warning("--tracing.instrument: unknown library %r ignored", library)
            continue
        module_name, class_name = INSTRUMENTORS[library]
        try:
            instrumentor = getattr(importlib.import_module(module_name), class_name)()
        except ImportError as exc:
            log.warning(
                "--tracing.instrument %s cannot start (%s): "
                "pip install 'cachewatch[instrumentation]'",
                library, exc,
            )  # fmt: skip
            continue
        if instrumentor.is_instrumented_by_opentelemetry:
            log.info("%s is instrumented by OpenTelemetry already; left as it is", library)
            continue
        instrumentor.instrument(tracer_provider=state.provider)
        state.on_shutdown(instrumentor.uninstrument)
        done.append(library)
    if done:
        log.info("OpenTelemetry instrumentation on: %s", ", ".join(done))
    return done
