"""Redis Cluster discovery: from one seed, every node of the cluster (``CLUSTER NODES``),
read again every ``--redis.topology-refresh`` and whenever the node asked fails, so that
nodes joining, leaving, failing over or resharding are followed.

Every node seen becomes a seed too: when the configured seed is gone, any node the cluster
last listed can answer. Each change (a node joining or leaving, a role changing) is logged
once and counted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client.metrics_core import Metric

from .. import catalog
from ..config.redis import RedisSettings
from .cluster import ClusterNode, ClusterView, parse_cluster_nodes

if TYPE_CHECKING:
    from .resp import Client

log = logging.getLogger(__name__)


class ClusterTopology:
    """The nodes of one cluster, as the last successful ``CLUSTER NODES`` said."""

    def __init__(
        self, settings: RedisSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.view = ClusterView()
        self.changes = 0
        self.refreshes = 0
        self.up = False
        self.last_error = ""
        self._read_at: float | None = None
        seed = settings.address
        self._seeds: list[tuple[str, int]] = [(seed.host, seed.port)]
        self._clients: dict[tuple[str, int], Client] = {}
        self._lock = threading.Lock()

    def current(self) -> ClusterView:
        """The view, read again first when it is older than the refresh interval."""
        with self._lock:
            due = self._read_at is None or (
                self.clock() - self._read_at >= self.settings.topology_refresh
            )
            if due:
                self._refresh()
            return self.view

    def refresh(self) -> ClusterView:
        """Read the nodes now (after a node failed, or on request)."""
        with self._lock:
            self._refresh()
            return self.view

    def _refresh(self) -> None:
        self._read_at = self.clock()
        errors = []
        for seed in list(self._seeds):
            try:
                reply = self._client(seed).execute_command("CLUSTER", "NODES")
            except Exception as exc:  # noqa: BLE001 - ask the next seed
                errors.append(f"{seed[0]}:{seed[1]}: {type(exc).__name__}")
                self._drop_client(seed)
                continue
            text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
            nodes, bad = parse_cluster_nodes(text)
            if not nodes:
                errors.append(f"{seed[0]}:{seed[1]}: no nodes in CLUSTER NODES")
                continue
            if bad:
                log.debug("%d lines of CLUSTER NODES skipped", bad)
            self._adopt(ClusterView.of(nodes), seed)
            self.refreshes += 1
            if not self.up and self.last_error:
                log.info("redis cluster discovery works again (via %s:%s)", *seed)
            self.up, self.last_error = True, ""
            return
        message = self.settings.redact("; ".join(errors))[:300]
        if self.up or not self.last_error:
            log.warning("redis cluster discovery failed on every known node: %s", message)
        self.up, self.last_error = False, message

    def _adopt(self, view: ClusterView, seed: tuple[str, int]) -> None:
        before = {node.node_id: node for node in self.view.nodes}
        after = {node.node_id: node for node in view.nodes}
        if before:
            for node_id in after.keys() - before.keys():
                node = after[node_id]
                log.info("redis cluster: node %s joined (%s)", node.address, node.role)
            for node_id in before.keys() - after.keys():
                log.info("redis cluster: node %s left", before[node_id].address)
            for node_id in after.keys() & before.keys():
                old, new = before[node_id], after[node_id]
                if (old.role, old.address, old.failed) != (new.role, new.address, new.failed):
                    log.info(
                        "redis cluster: node %s is now %s%s (was %s%s)",
                        new.address, new.role, " (failed)" if new.failed else "",
                        old.role, " (failed)" if old.failed else "",
                    )  # fmt: skip
                    self.changes += 1
            self.changes += len(after.keys() ^ before.keys())
        self.view = view
        seeds = [seed] + [(n.host, n.port) for n in view.nodes if not n.failed]
        configured = (self.settings.address.host, self.settings.address.port)
        self._seeds = list(dict.fromkeys([*seeds, configured]))
        for gone in set(self._clients) - set(self._seeds):
            self._drop_client(gone)

    def _client(self, seed: tuple[str, int]) -> Any:
        client = self._clients.get(seed)
        if client is None:
            from .redis import connect

            client = self._clients[seed] = connect(self.settings.at(*seed), max_connections=2)
        return client

    def _drop_client(self, seed: tuple[str, int]) -> None:
        client = self._clients.pop(seed, None)
        if client is not None:
            from .redis import close_client

            close_client(client)

    def node(self, target: str) -> ClusterNode | None:
        """The node of the last view whose ``HOST:PORT`` is ``target``."""
        for node in self.view.nodes:
            if node.address == target:
                return node
        return None

    def families(self) -> list[Metric]:
        nodes = catalog.REDIS_CLUSTER_NODES.family()
        roles = {"master": 0, "replica": 0, "failed": 0}
        for node in self.view.nodes:
            roles["failed" if node.failed else node.role] += 1
        for role, count in roles.items():
            nodes.add_metric([role], count)
        slots = catalog.REDIS_CLUSTER_SLOTS_SERVED.family()
        slots.add_metric([], sum(n.slots for n in self.view.masters))
        changes = catalog.REDIS_CLUSTER_CHANGES.family()
        changes.add_metric([], self.changes)
        up = catalog.REDIS_CLUSTER_DISCOVERY_UP.family()
        up.add_metric([], 1 if self.up else 0)
        return [nodes, slots, changes, up]

    def close(self) -> None:
        with self._lock:
            for seed in list(self._clients):
                self._drop_client(seed)
