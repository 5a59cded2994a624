"""Tracing as a user turns it on: the demo process with OTEL_* variables, a real receiver,
a dead collector, the key-hash and metrics-bridge settings."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from cachewatch import CacheRegistry
from cachewatch.config import ConfigError, load_config
from cachewatch.config.files import SettingsFiles
from cachewatch.exporter import build
from cachewatch.sources.local import LocalSource

from .otlp_receiver import ReceivedSpan, otlp_receiver
from .scrape import samples, value
from .servers import free_port, wait_for_port


def demo(port: int, duration: str, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CACHEWATCH_"))}
    full.update(env)
    return subprocess.Popen(
        [sys.executable, "-m", "cachewatch.cli", "demo", "--web.listen-address",
         f"127.0.0.1:{port}", "--duration", duration, "--demo.speed", "30", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full,
    )  # fmt: skip


def test_demo_sends_spans_of_its_caches_and_polls_with_the_service_name() -> None:
    with otlp_receiver() as receiver:
        port = free_port()
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_SERVICE_NAME": "demo-shop",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.2",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        process = demo(port, "20s", env, "--tracing.record-keys", "true")
        try:
            wait_for_port(port, timeout=30)

            def polled_and_got(found: list[ReceivedSpan]) -> bool:
                samples(port)  # each scrape polls the local source: 1 in 5 is a span
                return any(s.name.startswith("get ") for s in found) and any(
                    s.name == "poll local" for s in found
                )

            spans = receiver.wait_for(polled_and_got, timeout=20)
            process.terminate()
            _, err = process.communicate(timeout=15)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(5)
    get = next(s for s in spans if s.name.startswith("get "))
    assert get.resource["service.name"] == "demo-shop"
    assert get.resource["deployment.environment"] == "test"
    assert get.attributes["cachewatch.cache.name"] in {
        "embedding_cache", "search_cache", "file_cache", "project_cache",
    }  # fmt: skip
    assert len(get.attributes["cachewatch.cache.key.hash"]) == 16
    assert "Traceback" not in err


def test_demo_with_a_dead_collector_serves_and_stops_in_bounded_time() -> None:
    port = free_port()
    env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    env["OTEL_BSP_SCHEDULE_DELAY"] = "100"
    process = demo(port, "10m", env)
    try:
        wait_for_port(port, timeout=30)
        time.sleep(1.5)  # spans pile up; the exporter fails and backs off
        found = samples(port)
        assert (value(found, "cache_gets_total", cache="embedding_cache", result="hit") or 0) > 0
        start = time.monotonic()
        process.terminate()
        process.communicate(timeout=15)
        took = time.monotonic() - start
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    assert process.returncode == 0
    assert took < 5.0  # tracer shutdown is bounded by 2 s; the rest is the HTTP server


def test_metrics_bridge_setting_serves_global_otel_metrics(cache_table: CacheRegistry) -> None:
    """``--otel-metrics.bridge true``: the exporter built from it installs the global meter
    provider, so any ``opentelemetry.metrics.get_meter()`` in the process records onto it."""
    from opentelemetry import metrics

    config = load_config("serve", flags={"otel_metrics_bridge": "true"}, environ={})
    exporter = build(config, SettingsFiles(), [LocalSource(cache_table)], cache_table)
    try:
        metrics.get_meter("shop").create_counter("orders.placed").add(2, {"region": "eu"})
        found = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in exporter.registry.collect()
            for sample in family.samples
        }
    finally:
        exporter.close()
    assert found[("orders_placed_total", (("region", "eu"),))] == 2


def test_settings_parse_and_reject_bad_values() -> None:
    config = load_config("serve", environ={"CACHEWATCH_TRACING_RECORD_KEYS": "yes"})
    assert config.tracing_record_keys and not config.otel_metrics_bridge
    config = load_config("demo", flags={"otel_metrics_bridge": "true"}, environ={})
    assert config.otel_metrics_bridge
    try:
        load_config("serve", flags={"tracing_record_keys": "maybe"}, environ={})
    except ConfigError as exc:
        assert "--tracing.record-keys" in str(exc)
    else:
        raise AssertionError("a bad boolean was accepted")
