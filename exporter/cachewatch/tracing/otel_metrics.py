"""The OpenTelemetry metrics bridge: metrics recorded through the OpenTelemetry metrics API
(by the application or any OpenTelemetry instrumentation) served on cachewatch's /metrics,
from the exporter's own private registry, next to cachewatch's families.

opentelemetry-exporter-prometheus translates each instrument (``http.server.duration``,
unit ``ms``, a histogram) into a Prometheus family (``http_server_duration_milliseconds``).
This module adds two things on top:

* no ``otel_scope_*`` labels and no ``target_info`` unless asked for, so the bridged series
  look like any other Prometheus series;
* no collisions: a translated name that cachewatch already publishes (its catalogue, the
  ``cachewatch_``, ``redis_``, ``process_`` and ``python_`` namespaces) is published as
  ``otel_<name>`` instead, so the exposition never holds two families of one name.

Imported only when the bridge is enabled: it loads the OpenTelemetry metrics SDK.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from opentelemetry import metrics as metrics_api
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from .. import catalog
from .sdk import build_resource

log = logging.getLogger(__name__)

COLLISION_PREFIX = "otel_"
RESERVED_PREFIXES = ("cachewatch_", "redis_", "process_", "python_")
_SUFFIXES = ("_total", "_created", "_bucket", "_count", "_sum", "_info")


def _reserved_names() -> set[str]:
    names: set[str] = set()
    for spec in catalog.ALL:
        names.add(spec.name)
        names.add(spec.family_name)
    return names


def _base(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


class BridgeCollector(Collector):
    """Yields the reader's families, renaming any whose name cachewatch already uses."""

    def __init__(self, staging: CollectorRegistry, extra_reserved: set[str] | None = None) -> None:
        self.staging = staging
        self.reserved = _reserved_names() | (extra_reserved or set())
        self._warned: set[str] = set()

    def collides(self, name: str) -> bool:
        return (
            name in self.reserved
            or _base(name) in self.reserved
            or name.startswith(RESERVED_PREFIXES)
        )

    def collect(self) -> Iterator[Metric]:
        for family in self.staging.collect():
            if self.collides(family.name):
                renamed = COLLISION_PREFIX + family.name
                if family.name not in self._warned:
                    self._warned.add(family.name)
                    log.info("OpenTelemetry metric %s is published as %s", family.name, renamed)
                family = _renamed(family, renamed)
            yield family


def _renamed(family: Metric, name: str) -> Metric:
    copy = Metric(name, family.documentation, family.type, family.unit)
    old = family.name
    for sample in family.samples:
        copy.samples.append(sample._replace(name=name + sample.name[len(old) :]))
    return copy


class OtelMetricsBridge:
    """A running bridge: the meter provider to record through, and how to stop it."""

    def __init__(
        self, provider: MeterProvider, collector: BridgeCollector, registry: CollectorRegistry
    ) -> None:
        self.provider = provider
        self.collector = collector
        self.registry = registry

    def meter(self, name: str, version: str | None = None) -> Any:
        return self.provider.get_meter(name, version)

    def shutdown(self) -> None:
        """Stop publishing on the registry and stop the meter provider."""
        self.registry.unregister(self.collector)
        self.provider.shutdown(timeout_millis=2000)


def start_otel_metrics(
    registry: CollectorRegistry,
    *,
    scope_labels: bool = False,
    target_info: bool = False,
    set_global: bool = True,
    service_name: str = "cachewatch",
) -> OtelMetricsBridge:
    """Publish OpenTelemetry metrics on ``registry`` (an exporter's private one).
    ``set_global`` makes the bridge's meter provider the global one (when none is set yet),
    so ``opentelemetry.metrics.get_meter(...)`` anywhere in the process records into it."""
    staging = CollectorRegistry(auto_describe=False)
    reader = PrometheusMetricReader(
        disable_target_info=not target_info,
        scope_info_enabled=scope_labels,
        registry=staging,
    )
    provider = MeterProvider(
        metric_readers=[reader],
        resource=build_resource({"service.name": service_name}),
        shutdown_on_exit=False,
    )
    collector = BridgeCollector(staging)
    registry.register(collector)
    bridge = OtelMetricsBridge(provider, collector, registry)
    if set_global:
        current = metrics_api.get_meter_provider()
        if type(current).__name__ in ("_ProxyMeterProvider", "NoOpMeterProvider"):
            metrics_api.set_meter_provider(provider)
        else:
            log.info("a global meter provider is already set; use bridge.meter() to record")
    return bridge
