"""Redis Cluster read from one node (sources/cluster.py): CLUSTER INFO beside Debian's
redis_exporter on a real three-master cluster, and CLUSTER NODES parsed."""

from __future__ import annotations

from cachewatch.sources.cluster import parse_cluster_nodes
from cachewatch.sources.redis import RedisSource

from . import parity
from .redisdata import settings_for
from .scrape import fetch, samples, value
from .test_redis import served
from .topology import Cluster, connect


def test_names_and_labels_match_redis_exporter(cluster: Cluster) -> None:
    node = cluster.seed
    theirs = parity.theirs(node.url)
    with served(RedisSource(settings_for(node), start_census=False)) as port:
        ours = fetch(port)
    assert "redis_cluster_slots_fail" in theirs
    assert parity.missing(theirs, ours) == {}


def test_cluster_info_values(cluster: Cluster) -> None:
    node = cluster.nodes[1]
    source = RedisSource(settings_for(node), start_census=False)
    with served(source) as port:
        first, second = samples(port), samples(port)  # the second pipelines CLUSTER INFO
    for found in (first, second):
        assert value(found, "redis_cluster_enabled") == 1
        assert value(found, "redis_cluster_state") == 1
        assert value(found, "redis_cluster_slots_assigned") == 16384
        assert value(found, "redis_cluster_slots_ok") == 16384
        assert value(found, "redis_cluster_slots_fail") == 0
        assert value(found, "redis_cluster_slots_pfail") == 0
        assert value(found, "redis_cluster_known_nodes") == 3
        assert value(found, "redis_cluster_size") == 3
        assert value(found, "redis_cluster_my_epoch") in (1, 2, 3)
        assert value(found, "redis_cluster_messages_sent_total") > 0
        assert value(found, "redis_cluster_stats_messages_ping_sent") > 0
        assert value(found, "redis_db_keys", db="db0") is not None
    assert source.mode == "cluster"


def test_cluster_nodes_parsed(cluster: Cluster) -> None:
    reply = connect(cluster.seed.port).execute_command("CLUSTER", "NODES")
    nodes, bad = parse_cluster_nodes(reply)
    assert bad == 0
    assert sorted(n.port for n in nodes) == sorted(n.port for n in cluster.nodes)
    assert all(n.is_master and not n.failed and n.link_connected for n in nodes)
    assert sum(n.slots for n in nodes) == 16384


def test_cluster_nodes_odd_lines() -> None:
    reply = "\n".join(
        [
            "a1 10.0.0.1:7000@17000,redis-a.internal myself,master - 0 0 1 connected 0-5460",
            "b2 10.0.0.2:7001@17001 slave a1 0 1 1 connected",
            "c3 :0@0 master,noaddr - 0 0 0 disconnected",
            "d4 10.0.0.4:7003@17003 master,fail - 0 0 3 disconnected 5461-10922 [1->-a1]",
            "f6 10.0.0.6:7005@17005 handshake - 0 0 0 connected",
            "short line",
            "e5 [::1]:7004@17004 master - 0 0 4 connected 10923-16383 99999",
        ]
    )
    nodes, bad = parse_cluster_nodes(reply)
    assert bad == 2
    by_id = {n.node_id: n for n in nodes}
    assert by_id["a1"].hostname == "redis-a.internal" and by_id["a1"].slots == 5461
    assert by_id["b2"].master_id == "a1" and by_id["b2"].role == "replica"
    assert by_id["d4"].failed and by_id["d4"].slots == 5462
    assert by_id["e5"].host == "::1" and by_id["e5"].address == "[::1]:7004"
