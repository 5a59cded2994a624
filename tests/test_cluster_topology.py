"""Redis Cluster discovery (sources/cluster_topology.py) on a real cluster whose topology
changes: a node joins, a node is forgotten, the seed itself dies."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator

import pytest

from cachewatch.sources.cluster_topology import ClusterTopology

from .redisdata import settings_for
from .topology import Cluster, connect, redis_cluster, wait_until


@pytest.fixture(scope="module")
def changing() -> Iterator[Cluster]:
    with redis_cluster(masters=3) as running:
        yield running


def _families(topology: ClusterTopology) -> dict[tuple[str, tuple[str, ...]], float]:
    return {
        (s.name, tuple(s.labels.values())): s.value
        for family in topology.families()
        for s in family.samples
    }


def test_discovery_follows_the_cluster(changing: Cluster, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cachewatch")
    seed = changing.seed
    settings = dataclasses.replace(settings_for(seed), cluster=True, topology_refresh=0.05)
    topology = ClusterTopology(settings)
    try:
        view = topology.current()
        assert sorted(n.port for n in view.nodes) == sorted(n.port for n in changing.nodes)
        assert len(view.masters) == 3 and sum(n.slots for n in view.masters) == 16384
        got = _families(topology)
        assert got[("cachewatch_redis_cluster_nodes", ("master",))] == 3
        assert got[("cachewatch_redis_cluster_slots_served", ())] == 16384
        assert got[("cachewatch_redis_cluster_discovery_up", ())] == 1

        # A node joins.
        joined = changing.start_node()
        joined.meet(seed)
        wait_until(lambda: len(topology.refresh().nodes) == 4, what="discovery sees the 4th")
        assert topology.node(f"127.0.0.1:{joined.port}") is not None
        assert topology.changes == 1
        assert any(f"{joined.port} joined (master)" in r.getMessage() for r in caplog.records)

        # It is forgotten by every node and stops.
        others = [node for node in changing.nodes if node is not joined]
        wait_until(
            lambda: all(int(connect(n.port).cluster("info")["cluster_known_nodes"]) == 4
                        for n in others),
            what="every node knows the 4th",
        )  # fmt: skip
        joined_id = changing.node_id(joined)
        joined.stop()
        for node in others:
            connect(node.port).execute_command("CLUSTER", "FORGET", joined_id)
        changing.nodes.remove(joined)
        wait_until(lambda: len(topology.refresh().nodes) == 3, what="discovery drops the 4th")
        assert topology.node(f"127.0.0.1:{joined.port}") is None
        assert topology.changes == 2
        assert any(f"{joined.port} left" in r.getMessage() for r in caplog.records)

        # The seed dies: the other nodes answer, and say the seed failed.
        seed.stop()

        def seed_failed() -> bool:
            node = topology.refresh().nodes
            return any(n.port == seed.port and n.failed for n in node)

        wait_until(seed_failed, timeout=30, what="the seed flagged failed")
        assert topology.up
        got = _families(topology)
        assert got[("cachewatch_redis_cluster_nodes", ("failed",))] == 1
        assert got[("cachewatch_redis_cluster_slots_served", ())] < 16384
        assert sum(1 for r in caplog.records if "is now master (failed)" in r.getMessage()) == 1
    finally:
        topology.close()
