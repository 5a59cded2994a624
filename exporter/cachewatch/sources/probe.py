"""The sources behind ``/probe?target=NAME``: one Redis source, with its poller, per target
named in the probe configuration, or per node the topology's directory lists now (a cluster's
nodes, a Sentinel's master and replicas: ``target=HOST:PORT``); made on first use, closed
when the node leaves the directory, and all closed together."""

from __future__ import annotations

import threading

from ..config.probe import ProbeConfig
from ..config.redis import RedisSettings
from .directory import NodeDirectory, normalize_target
from .poller import Poller

MAX_NODE_POLLERS = 1_000


class ProbeTargets:
    """Name -> poller of that target's Redis source; an unknown name gets nothing, so no
    connection is ever attempted to a place the configuration (or the topology) does not
    name."""

    def __init__(
        self, config: ProbeConfig | None = None, directory: NodeDirectory | None = None
    ) -> None:
        self.config = config or ProbeConfig()
        self.directory = directory
        self._pollers: dict[str, Poller] = {}
        self._node_pollers: dict[str, tuple[RedisSettings, Poller]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def poller(self, name: str) -> Poller | None:
        target = self.config.targets.get(name)
        if target is None:
            return self._node_poller(name)
        with self._lock:
            if self._closed:
                raise RuntimeError("the probe targets are closed")
            poller = self._pollers.get(name)
            if poller is None:
                from .redis import RedisSource

                poller = self._pollers[name] = Poller([RedisSource(target.settings)])
            return poller

    def _node_poller(self, name: str) -> Poller | None:
        """A node of the directory (HOST:PORT); a node that left it gets its source closed."""
        if self.directory is None:
            return None
        address = normalize_target(name)
        settings = self.directory.settings_for(address)
        stale: list[Poller] = []
        try:
            with self._lock:
                if self._closed:
                    raise RuntimeError("the probe targets are closed")
                known = self._node_pollers.get(address)
                if known is not None and known[0] != settings:
                    stale.append(self._node_pollers.pop(address)[1])
                    known = None
                if settings is None:
                    return None
                if known is None:
                    if len(self._node_pollers) >= MAX_NODE_POLLERS:
                        _, (_, oldest) = next(iter(self._node_pollers.items()))
                        stale.append(oldest)
                        self._node_pollers.pop(next(iter(self._node_pollers)))
                    from .redis import RedisSource

                    known = (settings, Poller([RedisSource(settings, start_census=False)]))
                    self._node_pollers[address] = known
                return known[1]
        finally:
            for poller in stale:
                poller.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pollers, self._pollers = list(self._pollers.values()), {}
            pollers += [poller for _, poller in self._node_pollers.values()]
            self._node_pollers = {}
        for poller in pollers:
            poller.close()
