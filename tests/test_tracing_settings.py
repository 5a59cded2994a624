"""What the OTEL_* variables ask of tracing, parsed without importing OpenTelemetry."""

from __future__ import annotations

import pytest

from cachewatch.tracing import settings as tracing_settings


def test_tracing_is_off_unless_an_exporter_or_endpoint_is_given() -> None:
    assert not tracing_settings.tracing_settings({}).enabled
    assert not tracing_settings.tracing_settings({"OTEL_TRACES_EXPORTER": "none"}).enabled
    on = tracing_settings.tracing_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"})
    assert on.enabled and on.exporters == ("otlp",) and on.endpoint == "http://collector:4317"
    disabled = tracing_settings.tracing_settings(
        {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}
    )
    assert not disabled.enabled
    default_endpoint = tracing_settings.tracing_settings({"OTEL_TRACES_EXPORTER": "otlp,console"})
    assert default_endpoint.exporters == ("otlp", "console")
    assert default_endpoint.endpoint == "http://localhost:4317"


def test_traces_endpoint_wins_and_resource_and_service_name_are_read() -> None:
    settings = tracing_settings.tracing_settings(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://general:4317",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:4317",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,team=a%20b,broken",
            "OTEL_SERVICE_NAME": "checkout",
        }
    )
    assert settings.endpoint == "http://traces:4317"
    assert settings.resource["deployment.environment"] == "prod"
    assert settings.resource["team"] == "a b"
    assert settings.service_name == "checkout"
    assert any("broken" in warning for warning in settings.warnings)
    assert tracing_settings.tracing_settings({}).service_name == "cachewatch"


@pytest.mark.parametrize(
    ("sampler", "arg", "rule", "ratio"),
    [
        ("", "", "follow", 1.0),
        ("always_on", "", "always", 1.0),
        ("traceidratio", "0.25", "trace_id", 0.25),
        ("parentbased_traceidratio", "0.01", "follow", 0.01),
        ("parentbased_always_off", "", "follow", 0.0),
        ("parentbased_traceidratio", "7", "follow", 1.0),  # invalid: warned, default
        ("jaeger_remote", "", "follow", 1.0),  # unsupported: warned, default
    ],
)
def test_samplers_from_the_environment(sampler: str, arg: str, rule: str, ratio: float) -> None:
    env = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": sampler}
    env["OTEL_TRACES_SAMPLER_ARG"] = arg
    settings = tracing_settings.tracing_settings(env)
    assert (settings.parent_rule, settings.root_ratio) == (rule, ratio)
    assert bool(settings.warnings) == (arg == "7" or sampler == "jaeger_remote")


def test_always_off_sampler_turns_tracing_off() -> None:
    env = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "always_off"}
    assert not tracing_settings.tracing_settings(env).enabled


def test_key_recording_is_opt_in() -> None:
    assert not tracing_settings.tracing_settings({}).record_keys
    assert tracing_settings.tracing_settings({"CACHEWATCH_TRACING_RECORD_KEYS": "true"}).record_keys
    assert tracing_settings.tracing_settings({}, record_keys=True).record_keys
