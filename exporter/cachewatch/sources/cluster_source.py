"""``cachewatch serve --redis.cluster``: the whole Redis Cluster as one source of /metrics.

It publishes what belongs to the cluster, not to one node: the logical caches counted over
every master (``cluster_census``), and what discovery sees (nodes by role, slots served,
topology changes). Each node's own ``redis_*`` series come from ``/probe?target=HOST:PORT``,
one Prometheus target per node found on ``/discover`` (``directory``), so that every node
has its own ``up``, ``instance`` and scrape, as with redis_exporter.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from prometheus_client.metrics_core import Metric

from .. import catalog
from ..config.redis import RedisSettings
from ..snapshot import CacheSnapshot, SourceSnapshot
from .census import CensusFamilies, census_loop
from .cluster import ClusterNode
from .cluster_census import ClusterCensus
from .cluster_topology import ClusterTopology

if TYPE_CHECKING:
    from .resp import Client

log = logging.getLogger(__name__)


class ClusterSource:
    """Discovery and the cluster-wide census; ``poll`` never raises."""

    def __init__(
        self, settings: RedisSettings, *, name: str = "redis", start_census: bool = True
    ) -> None:
        self.name = name
        self.settings = settings
        self.topology = ClusterTopology(settings)
        self._census_families = CensusFamilies()
        self.census: ClusterCensus | None = None
        self._clients: dict[str, Client] = {}
        self._clients_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if settings.caches and settings.census_keys > 0:
            self.census = ClusterCensus(
                settings.caches,
                keys_per_step=settings.census_keys,
                samples_per_step=settings.census_samples,
            )
            if start_census:
                self._thread = threading.Thread(
                    target=census_loop,
                    args=(self._stop, self.census_step, self._failed, settings.census_interval),
                    name="cachewatch-cluster-census",
                    daemon=True,
                )
                self._thread.start()

    def poll(self) -> SourceSnapshot:
        start = time.perf_counter()
        try:
            self.topology.current()
            error = self.topology.last_error
        except Exception as exc:
            log.debug("cluster discovery raised", exc_info=True)
            error = type(exc).__name__
        extra: list[Metric] = self.topology.families()
        caches: list[CacheSnapshot] = []
        up = self.topology.up
        if self.census is not None and up:
            report = self.census.report()
            masters = catalog.CENSUS_MASTERS.family()
            masters.add_metric([], self.census.masters)
            extra += [masters, *self._census_families.families(report)]
            caches = [
                CacheSnapshot(
                    name=e.name,
                    source=self.name,
                    size=round(e.size),
                    memory_bytes=e.memory_bytes,
                    counts_known=False,
                )
                for e in report.estimates
            ]
        return SourceSnapshot(
            source=self.name,
            up=up,
            timestamp=time.time(),
            duration_seconds=time.perf_counter() - start,
            caches=caches,
            extra_families=extra,
            error=None if up else (error or "cluster discovery failed"),
        )

    def _client(self, node: ClusterNode) -> Any:
        with self._clients_lock:
            client = self._clients.get(node.address)
            if client is None:
                from .redis import connect

                client = self._clients[node.address] = connect(
                    self.settings.at(node.host, node.port), max_connections=2
                )
            return client

    def census_step(self) -> None:
        """One census step on every master (tests and the benchmark call it directly)."""
        if self.census is None:
            return
        from .redis import CensusCalls, close_client

        masters = self.topology.current().masters
        failed = self.census.step(masters, lambda node: CensusCalls(self._client(node)))
        if failed:  # a master down or moved: read the nodes again before the next step
            self.topology.refresh()
        addresses = {node.address for node in masters}
        with self._clients_lock:
            for address in set(self._clients) - addresses:
                close_client(self._clients.pop(address))

    def _failed(self, exc: Exception) -> None:
        log.debug("cluster census step failed: %s", type(exc).__name__)
        self.topology.refresh()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.settings.connect_timeout + self.settings.socket_timeout)
        from .redis import close_client

        with self._clients_lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            close_client(client)
        self.topology.close()
