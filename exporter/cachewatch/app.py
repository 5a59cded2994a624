"""One running cachewatch: sources, the private registry, health, and the JSON endpoints."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from .analysis.health import HealthMonitor
from .exposition import CachewatchCollector
from .hub import Hub
from .registry import CacheRegistry, default_registry
from .sources import Source
from .sources.local import LocalSource

log = logging.getLogger(__name__)

JsonHandler = Callable[[Mapping[str, str]], tuple[int, Any]]
"""Takes the query parameters; returns (HTTP status, JSON-serialisable body)."""


@dataclass(frozen=True)
class Route:
    path: str
    description: str
    handler: JsonHandler


class Exporter:
    """Wires sources to a private Prometheus registry, health checks and JSON routes."""

    def __init__(
        self,
        sources: Sequence[Source],
        *,
        cache_registry: CacheRegistry | None = None,
        process_metrics: bool = True,
    ) -> None:
        self.hub = Hub(sources)
        self.cache_registry = cache_registry
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(CachewatchCollector(self.hub, cache_registry))
        if process_metrics:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        self.health = HealthMonitor(self.hub)
        self.registry.register(self.health)
        self.routes: dict[str, Route] = {}
        self.add_route("/health", "health checks (200 healthy, 503 not)", self._health)
        self._closers: list[Callable[[], None]] = []
        self._closed = threading.Event()
        self.analysis: Any = None
        """The attached ``analysis.attach.Analysis`` (trends, alerts, report), if any."""

    def add_route(self, path: str, description: str, handler: JsonHandler) -> None:
        """Serve ``handler``'s JSON at ``path`` (analysis adds /report and /alerts this way)."""
        self.routes[path] = Route(path, description, handler)

    def on_close(self, closer: Callable[[], None]) -> None:
        self._closers.append(closer)

    def _health(self, _query: Mapping[str, str]) -> tuple[int, Any]:
        healthy, body = self.health.report()
        return (200 if healthy else 503), body

    def close(self) -> None:
        """Stop background work and release sources; safe to call twice."""
        if self._closed.is_set():
            return
        self._closed.set()
        for closer in reversed(self._closers):
            try:
                closer()
            except Exception:
                log.warning("shutdown step failed", exc_info=True)
        self.hub.close()


_embedded: Exporter | None = None
_embedded_lock = threading.Lock()


def embedded_exporter() -> Exporter:
    """The exporter of the module-level API: this process's in-process caches."""
    global _embedded
    with _embedded_lock:
        if _embedded is None:
            from .config import load_config
            from .runner import assemble

            registry = default_registry()
            exporter = Exporter([LocalSource(registry)], cache_registry=registry)
            # Settings from the environment (CACHEWATCH_SAMPLE_INTERVAL, CACHE_* thresholds),
            # read as the other in-process mode (the demo) reads them: no Redis settings.
            _embedded = assemble(load_config("demo", {}), exporter)
        return _embedded
