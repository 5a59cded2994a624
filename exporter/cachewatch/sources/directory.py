"""The nodes Prometheus scrapes one by one: every node of a Redis Cluster, or a Sentinel's
master and its replicas. ``/discover`` lists them in the format of Prometheus's
``http_sd_configs``; ``/probe?target=HOST:PORT`` scrapes one of them. Only nodes the
directory lists now can be probed: a caller cannot point the exporter anywhere else.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..config.redis import RedisSettings
from .cluster_topology import ClusterTopology
from .sentinel_watch import MasterWatch, NoMaster

META = "__meta_cachewatch_redis_"
"""Prefix of the discovery labels (``__meta_*`` labels are dropped after relabelling)."""


@dataclass(frozen=True)
class Node:
    address: str
    """``HOST:PORT``: the ``target`` of /probe."""
    role: str
    labels: tuple[tuple[str, str], ...] = ()


class NodeDirectory(Protocol):
    def nodes(self) -> list[Node]: ...

    def settings_for(self, target: str) -> RedisSettings | None: ...


def normalize_target(target: str) -> str:
    """``redis://HOST:PORT`` and ``rediss://HOST:PORT`` (redis_exporter's form) as HOST:PORT."""
    for scheme in ("redis://", "rediss://"):
        if target.startswith(scheme):
            return target[len(scheme) :].rstrip("/")
    return target


def sd_groups(directory: NodeDirectory) -> list[dict[str, Any]]:
    """One target group per node, for ``http_sd_configs``."""
    return [
        {
            "targets": [node.address],
            "labels": {f"{META}role": node.role, **{f"{META}{k}": v for k, v in node.labels}},
        }
        for node in directory.nodes()
    ]


class ClusterDirectory:
    """Every node of the cluster, as discovery last read it."""

    def __init__(self, topology: ClusterTopology) -> None:
        self.topology = topology

    def nodes(self) -> list[Node]:
        view = self.topology.current()
        by_id = {node.node_id: node for node in view.nodes}
        out = []
        for node in view.nodes:
            master = by_id.get(node.master_id or "") if node.master_id else node
            labels = [
                ("node_id", node.node_id),
                ("master_address", master.address if master else ""),
            ]
            if node.failed:
                labels.append(("failed", "true"))
            out.append(Node(node.address, node.role, tuple(labels)))
        return out

    def settings_for(self, target: str) -> RedisSettings | None:
        self.topology.current()
        node = self.topology.node(normalize_target(target))
        if node is None:
            return None
        return self.topology.settings.one_node(node.host, node.port)


class SentinelDirectory:
    """The master the Sentinels name and its replicas that are not down."""

    def __init__(
        self, watch: MasterWatch, *, refresh: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.watch = watch
        self.refresh = refresh
        self.clock = clock
        self._nodes: list[Node] = []
        self._read_at: float | None = None

    def nodes(self) -> list[Node]:
        if self._read_at is None or self.clock() - self._read_at >= self.refresh:
            self._read_at = self.clock()
            try:
                master, _ = self.watch.resolve()
                replicas = self.watch.replicas()
            except NoMaster:
                return self._nodes
            name = ("master_name", self.watch.sentinel.master_name)
            self._nodes = [Node(str(master), "master", (name,))] + [
                Node(str(replica), "replica", (name,)) for replica in replicas
            ]
        return self._nodes

    def settings_for(self, target: str) -> RedisSettings | None:
        wanted = normalize_target(target)
        for node in self.nodes():
            if node.address == wanted:
                host, _, port = node.address.rpartition(":")
                return self.watch.template.one_node(host.strip("[]"), int(port))
        return None
