"""``/probe?target=NAME``: the metrics of one Redis server named in the probe configuration,
rendered like /metrics. An unknown name is refused before any connection is attempted, and
is never echoed back."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry

from ..exposition.families import SnapshotCollector
from ..sources.probe import ProbeTargets
from .metrics import MetricsApp, make_metrics_app
from .routes import SECURITY_HEADERS, StartResponse, respond

log = logging.getLogger(__name__)


class ProbeApp:
    """The WSGI app of /probe: one metrics app per target, made on first use."""

    def __init__(self, targets: ProbeTargets) -> None:
        self.targets = targets
        self._apps: dict[str, MetricsApp] = {}
        self._lock = threading.Lock()

    def _app_for(self, name: str) -> MetricsApp | None:
        with self._lock:
            app = self._apps.get(name)
            if app is None:
                poller = self.targets.poller(name)
                if poller is None:
                    return None
                registry = CollectorRegistry(auto_describe=False)
                registry.register(SnapshotCollector(poller))
                app = self._apps[name] = make_metrics_app(registry, SECURITY_HEADERS)
            return app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        names = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).get("target")
        if not names or len(names) != 1 or not names[0]:
            return _plain(start_response, "400 Bad Request", "give exactly one ?target=NAME\n")
        app = self._app_for(names[0])
        if app is None:
            log.debug("probe of an unknown target refused")
            return _plain(
                start_response,
                "404 Not Found",
                "unknown target: /probe only scrapes targets named in the probe configuration\n",
            )
        return app({**environ, "REQUEST_METHOD": "GET", "QUERY_STRING": ""}, start_response)

    def close(self) -> None:
        self.targets.close()


def _plain(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    return respond(start_response, status, text.encode(), "text/plain; charset=utf-8")
