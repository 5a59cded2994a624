"""Joining the application's tracer provider.

When the application has configured OpenTelemetry itself (``opentelemetry-instrument``, a
framework integration, or its own ``trace.set_tracer_provider(TracerProvider(...))``),
cachewatch's spans go through that provider: its exporters, its resource, its span
processors (no second pipeline, no second batch processor) and, inside a request, as
children of the request's span.

cachewatch still decides before calling into OpenTelemetry, so that an unsampled cache
lookup never pays for an SDK span; here the decision mirrors the application's own
sampler (read off the provider), so that cachewatch records exactly what that sampler
would. A sampler it cannot mirror (a custom one) is asked for every operation instead.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import (
    ParentBased,
    Sampler,
    StaticSampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from .._version import __version__
from .pipeline import is_own_provider
from .sdk import DecidedSampler, Tracing, log
from .settings import TracingSettings


def application_provider() -> TracerProvider | None:
    """The SDK tracer provider the application set as OpenTelemetry's global one, if any
    (cachewatch's own provider, installed as the global one earlier, does not count)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider) and not is_own_provider(provider):
        return provider
    return None


def _static(sampler: Sampler) -> bool | None:
    """The one decision of a static sampler (``always_on``/``always_off``), else None."""
    if not isinstance(sampler, StaticSampler):
        return None
    return _sampled(sampler.should_sample(None, 1, "probe").decision)


def _sampled(decision: Any) -> bool:
    return bool(decision.is_sampled())


def _follows_parent(sampler: ParentBased) -> bool:
    """Whether a ``ParentBased`` sampler records exactly the children of sampled parents,
    local or remote (its default delegates), probed through its public API."""
    for remote in (False, True):
        for flags in (TraceFlags.SAMPLED, TraceFlags.DEFAULT):
            parent = SpanContext(1, 1, is_remote=remote, trace_flags=TraceFlags(flags))
            context: Context = trace.set_span_in_context(NonRecordingSpan(parent))
            decision = sampler.should_sample(context, 1, "probe").decision
            if _sampled(decision) != bool(flags & TraceFlags.SAMPLED):
                return False
    return True


def _root_ratio(sampler: Sampler) -> float | None:
    static = _static(sampler)
    if static is not None:
        return 1.0 if static else 0.0
    if isinstance(sampler, TraceIdRatioBased):
        return float(sampler.rate)
    return None


def mirrored_rule(sampler: Sampler) -> tuple[str, float] | None:
    """(parent rule, root ratio) under which cachewatch's decision equals ``sampler``'s, or
    None when it cannot be mirrored (a custom sampler, unusual ``ParentBased`` delegates)."""
    static = _static(sampler)
    if static is not None:
        return ("always", 1.0) if static else ("never", 0.0)
    if isinstance(sampler, TraceIdRatioBased):
        return "trace_id", float(sampler.rate)
    if isinstance(sampler, ParentBased) and _follows_parent(sampler):
        ratio = _root_ratio(getattr(sampler, "_root", None) or sampler)
        if ratio is not None:
            return "follow", ratio
    return None


def join(provider: Any, settings: TracingSettings) -> Tracing:
    """A tracer on the application's ``provider`` (an SDK ``TracerProvider``, or any
    OpenTelemetry ``TracerProvider``, whose sampler is then asked for every operation)."""
    tracer = provider.get_tracer("cachewatch", __version__)
    sampler = getattr(tracer, "sampler", None)
    if isinstance(sampler, DecidedSampler):  # this tracer was joined before
        sampler = sampler.configured
    resource = getattr(getattr(provider, "resource", None), "attributes", {})
    rule = mirrored_rule(sampler) if isinstance(sampler, Sampler) else None
    if rule is None or not isinstance(sampler, Sampler):
        log.info(
            "the application's sampler %s is asked for every cache operation "
            "(cachewatch cannot decide ahead of it)",
            sampler.get_description() if isinstance(sampler, Sampler) else type(provider),
        )
        decided = dataclasses.replace(settings, parent_rule="delegate", root_ratio=1.0)
        return Tracing(decided, tracer, provider, None, marks_decided=False)
    # The SDK tracer keeps its sampler in a public attribute; this tracer (scope
    # "cachewatch") is cachewatch's alone, so wrapping it changes no other span's sampling.
    tracer.sampler = DecidedSampler(sampler)
    parent_rule, ratio = rule
    decided = dataclasses.replace(
        settings,
        parent_rule=parent_rule,
        root_ratio=ratio,
        sampler=sampler.get_description(),
        resource={key: str(value) for key, value in resource.items()},
    )
    return Tracing(decided, tracer, provider, None)
