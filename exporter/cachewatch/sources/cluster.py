"""Redis Cluster, read from one node: ``CLUSTER INFO`` as redis_exporter publishes it (every
``cluster_*`` field as ``redis_cluster_*``), and ``CLUSTER NODES`` parsed into the nodes of
the cluster, which discovery (``cluster_topology``) follows.

``CLUSTER NODES`` rather than ``CLUSTER SHARDS``: it answers on every Redis and Valkey version
with cluster mode, in one reply that has everything discovery needs (address, role, the
master of each replica, slots, failure flags); ``SHARDS`` exists from Redis 7.0 only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .. import catalog
from .infofields import FamilyBuilder

MAX_NODES = 1_000
"""Nodes read from CLUSTER NODES (Redis Cluster's own recommended maximum)."""
SLOTS = 16_384


def add_cluster_info(out: FamilyBuilder, fields: Mapping[str, str]) -> None:
    """The redis_cluster_* series of one CLUSTER INFO reply (parsed like INFO)."""
    out.table(fields, catalog.REDIS_CLUSTER_INFO_FIELDS)


@dataclass(frozen=True)
class ClusterNode:
    """One line of CLUSTER NODES."""

    node_id: str
    host: str
    port: int
    flags: frozenset[str]
    master_id: str | None
    """For a replica: the node id of its master."""
    link_connected: bool
    slots: int = 0
    """How many slots this node serves (masters)."""
    hostname: str = ""

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def failed(self) -> bool:
        return bool(self.flags & {"fail", "fail?", "noaddr"})

    @property
    def role(self) -> str:
        return "master" if self.is_master else "replica"


_ADDRESS = re.compile(r"(?P<host>.*):(?P<port>\d{1,5})(?:@\d{1,5})?(?:,(?P<hostname>[^,\s]*))?")
_SLOT_RANGE = re.compile(r"(\d{1,5})(?:-(\d{1,5}))?")


def parse_cluster_nodes(reply: str) -> tuple[list[ClusterNode], int]:
    """The nodes of a CLUSTER NODES reply, and how many lines could not be parsed.

    ``<id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slot>...``
    """
    nodes: list[ClusterNode] = []
    bad = 0
    for line in reply.splitlines():
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 8 or len(nodes) >= MAX_NODES:
            bad += 1
            continue
        address = _ADDRESS.fullmatch(parts[1])
        if address is None or not address.group("host"):
            bad += 1  # ":0@0": a node whose address is not known yet
            continue
        port = int(address.group("port"))
        if not 0 < port < 65536:
            bad += 1
            continue
        flags = frozenset(parts[2].split(","))
        if "handshake" in flags:
            continue  # not a member yet: it gets its real node id when the handshake ends
        slots = 0
        for piece in parts[8:]:
            match = _SLOT_RANGE.fullmatch(piece)
            if match:  # "[slot->-node]" entries are slots being migrated: counted elsewhere
                low = int(match.group(1))
                high = int(match.group(2) or low)
                slots += max(0, min(high, SLOTS - 1) - low + 1)
        nodes.append(
            ClusterNode(
                node_id=parts[0],
                host=address.group("host").strip("[]"),
                port=port,
                flags=flags,
                master_id=None if parts[3] == "-" else parts[3],
                link_connected=parts[7] == "connected",
                slots=slots,
                hostname=address.group("hostname") or "",
            )
        )
    return nodes, bad


@dataclass(frozen=True)
class ClusterView:
    """The cluster as one node sees it."""

    nodes: tuple[ClusterNode, ...] = ()
    masters: tuple[ClusterNode, ...] = field(default=())

    @staticmethod
    def of(nodes: list[ClusterNode]) -> ClusterView:
        ordered = tuple(sorted(nodes, key=lambda n: (n.host, n.port)))
        masters = tuple(n for n in ordered if n.is_master and not n.failed)
        return ClusterView(ordered, masters)
