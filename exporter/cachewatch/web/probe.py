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
from ..sources.poller import Poller
from ..sources.probe import ProbeTargets
from .metrics import MetricsApp, make_metrics_app
from .routes import SECURITY_HEADERS, StartResponse, respond

log = logging.getLogger(__name__)


class ProbeApp:
    """The WSGI app of /probe: one metrics app per target, made on first use."""

    def __init__(self, targets: ProbeTargets) -> None:
        self.targets = targets
        self._apps: dict[str, tuple[Poller, MetricsApp]] = {}
        self._lock = threading.Lock()

    def _app_for(self, name: str) -> MetricsApp | None:
        poller = self.targets.poller(name)
        with self._lock:
            if poller is None:
                self._apps.pop(name, None)
                return None
            known = self._apps.get(name)
            if known is None or known[0] is not poller:  # new, or a node whose source changed
                registry = CollectorRegistry(auto_describe=False)
                registry.register(SnapshotCollector(poller))
                known = self._apps[name] = (poller, make_metrics_app(registry, SECURITY_HEADERS))
            return known[1]

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
                "unknown target: /probe only scrapes targets named in the probe configuration "
                "and the nodes /discover lists\n",
            )
        return app({**environ, "REQUEST_METHOD": "GET", "QUERY_STRING": ""}, start_response)

    def close(self) -> None:
        self.targets.close()


def _plain(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    return respond(start_response, status, text.encode(), "text/plain; charset=utf-8")
