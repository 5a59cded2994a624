"""What the standard ``OTEL_*`` variables ask of tracing, parsed without importing any of
OpenTelemetry (a process with tracing off never loads the SDK)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

from ..config import environment

DEFAULT_SERVICE_NAME = "cachewatch"
DEFAULT_OTLP_ENDPOINT = "http://localhost:4317"
DEFAULT_ZIPKIN_ENDPOINT = "http://localhost:9411/api/v2/spans"
SUPPORTED_EXPORTERS = ("otlp", "zipkin", "console", "none")
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


@dataclass(frozen=True)
class TracingSettings:
    """What the ``OTEL_*`` variables ask for, resolved against cachewatch's defaults."""

    enabled: bool
    """cachewatch's own pipeline can start: the variables name an exporter it supports."""
    requested: bool = False
    """The variables ask for tracing at all (any exporter but ``none``, or an OTLP endpoint):
    enough to join the application's tracer provider, whose exporters are its own."""
    exporters: tuple[str, ...] = ()
    endpoint: str = DEFAULT_OTLP_ENDPOINT
    timeout_seconds: float = 10.0
    zipkin_endpoint: str = DEFAULT_ZIPKIN_ENDPOINT
    zipkin_timeout_seconds: float = 10.0
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


def _timeout_seconds(raw: str, name: str, warnings: list[str]) -> float:
    """A per-export deadline. The spec gives milliseconds; the Python SDK has long read
    seconds. A value above 120 can only mean milliseconds."""
    try:
        timeout = float(raw)
    except ValueError:
        warnings.append(f"{name}: invalid number {raw!r}")
        return 10.0
    return timeout / 1000 if timeout > 120 else timeout


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


def sdk_span_metrics_on() -> bool:
    """Whether OpenTelemetry's SDK counts its own spans: it reads
    ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED`` from the process environment, where only
    "true" (any case, spaces around) turns it on."""
    value = os.environ.get("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "")
    return value.strip().lower() == "true"


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
        record_keys = environment.tracing_record_keys(env)
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
        timeout = _timeout_seconds(raw_timeout, "OTEL_EXPORTER_OTLP_TIMEOUT", warnings)
    zipkin_endpoint = env.get("OTEL_EXPORTER_ZIPKIN_ENDPOINT", "").strip()
    zipkin_timeout = 10.0
    raw_zipkin_timeout = env.get("OTEL_EXPORTER_ZIPKIN_TIMEOUT", "").strip()
    if raw_zipkin_timeout:
        zipkin_timeout = _timeout_seconds(
            raw_zipkin_timeout, "OTEL_EXPORTER_ZIPKIN_TIMEOUT", warnings
        )

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
        requested=any(name != "none" for name in names) and sampler != "always_off",
        exporters=tuple(exporters),
        endpoint=endpoint or DEFAULT_OTLP_ENDPOINT,
        timeout_seconds=timeout,
        zipkin_endpoint=zipkin_endpoint or DEFAULT_ZIPKIN_ENDPOINT,
        zipkin_timeout_seconds=zipkin_timeout,
        schedule_delay_millis=delay,
        sampler=sampler,
        parent_rule=parent_rule,
        root_ratio=ratio,
        resource=resource,
        record_keys=record_keys,
        warnings=tuple(warnings),
    )
