"""The sources behind ``/probe?target=NAME``: one Redis source, with its poller, per target
named in the probe configuration, made on first use and closed together."""

from __future__ import annotations

import threading

from ..config.probe import ProbeConfig
from .poller import Poller


class ProbeTargets:
    """Name -> poller of that target's Redis source; an unknown name gets nothing, so no
    connection is ever attempted to a place the configuration does not name."""

    def __init__(self, config: ProbeConfig) -> None:
        self.config = config
        self._pollers: dict[str, Poller] = {}
        self._lock = threading.Lock()
        self._closed = False

    def poller(self, name: str) -> Poller | None:
        target = self.config.targets.get(name)
        if target is None:
            return None
        with self._lock:
            if self._closed:
                raise RuntimeError("the probe targets are closed")
            poller = self._pollers.get(name)
            if poller is None:
                from .redis import RedisSource

                poller = self._pollers[name] = Poller([RedisSource(target.settings)])
            return poller

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pollers, self._pollers = list(self._pollers.values()), {}
        for poller in pollers:
            poller.close()
