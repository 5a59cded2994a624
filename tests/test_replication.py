"""Replication with redis_exporter's labels (sources/replication.py): a master with two real
replicas, each scraped beside Debian's redis_exporter; a replica whose master is gone."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from cachewatch import catalog
from cachewatch.sources.infofields import FamilyBuilder
from cachewatch.sources.redis import RedisSource
from cachewatch.sources.replication import add_replication

from . import parity
from .redisdata import fill, settings_for
from .scrape import fetch, samples, value
from .servers import LOOPBACK, RedisServer, free_port, redis_server
from .test_redis import served
from .topology import ReplicaSet, connect, replica_set, wait_until


@pytest.fixture(scope="module")
def replicas() -> Iterator[ReplicaSet]:
    with replica_set(replicas=2) as group:
        yield group


def _ours(server: RedisServer) -> str:
    with served(RedisSource(settings_for(server), start_census=False)) as port:
        return fetch(port)


@pytest.mark.parametrize("which", ["master", "replica"])
def test_names_and_labels_match_redis_exporter(replicas: ReplicaSet, which: str) -> None:
    server = replicas.master if which == "master" else replicas.replicas[0]
    theirs = parity.theirs(server.url)
    assert parity.missing(theirs, _ours(server)) == {}
    assert ("redis_connected_slave_offset_bytes" in theirs) == (which == "master")
    assert ("redis_slave_info" in theirs) == (which == "replica")


def test_a_master_names_each_replica_with_its_offset_and_lag(replicas: ReplicaSet) -> None:
    fill(connect(replicas.master.port), "r:", 100)
    offset = int(connect(replicas.master.port).info("replication")["master_repl_offset"])

    def acknowledged() -> bool:  # replicas acknowledge their offset once a second
        info = connect(replicas.master.port).info("replication")
        return all(int(info[f"slave{i}"]["offset"]) >= offset for i in range(2))

    wait_until(acknowledged, what="replicas acknowledged the writes")
    with served(RedisSource(settings_for(replicas.master), start_census=False)) as port:
        found = samples(port)
    assert value(found, "redis_connected_slaves") == 2
    for replica in replicas.replicas:
        labels = {"slave_ip": LOOPBACK, "slave_port": str(replica.port), "slave_state": "online"}
        assert value(found, "redis_connected_slave_offset_bytes", **labels) >= offset
        lag = value(found, "redis_connected_slave_lag_seconds", **labels)
        assert lag is not None and 0 <= lag <= 2


def test_a_replica_names_its_master(replicas: ReplicaSet) -> None:
    replica = replicas.replicas[1]
    with served(RedisSource(settings_for(replica), start_census=False)) as port:
        found = samples(port)
    master = {"master_host": LOOPBACK, "master_port": str(replicas.master.port)}
    assert value(found, "redis_master_link_up", **master) == 1
    assert value(found, "redis_master_sync_in_progress", **master) == 0
    assert value(found, "redis_slave_repl_offset", **master) > 0
    last_io = value(found, "redis_master_last_io_seconds_ago", **master)
    assert last_io is not None and 0 <= last_io <= 10
    assert value(found, "redis_slave_info", **master, read_only="1") == 1
    assert value(found, "redis_slave_read_only") == 1
    assert value(found, "redis_instance_info", **_instance_labels(found)) == 1


def _instance_labels(found: dict) -> dict[str, str]:  # type: ignore[type-arg]
    for name, labels in found:
        if name == "redis_instance_info":
            as_dict = dict(labels)
            assert as_dict["role"] == "slave" and len(as_dict["master_replid"]) == 40
            return as_dict
    raise AssertionError("no redis_instance_info")


def test_a_replica_whose_master_is_gone_says_so() -> None:
    gone = free_port()
    with (
        redis_server(["--replicaof", LOOPBACK, str(gone)]) as orphan,
        served(RedisSource(settings_for(orphan), start_census=False)) as port,
    ):
        found = samples(port)
    master = {"master_host": LOOPBACK, "master_port": str(gone)}
    assert value(found, "redis_master_link_up", **master) == 0
    assert value(found, "redis_master_last_io_seconds_ago", **master) == -1
    assert value(found, "redis_up") == 1


def test_parsing_keydb_multi_master_and_odd_replica_lines() -> None:
    out = FamilyBuilder()
    fields = {
        "role": "slave",
        "master_host": "kdb0", "master_port": "6377", "master_link_status": "up",
        "master_last_io_seconds_ago": "1", "master_sync_in_progress": "0",
        "master_1_host": "kdb1", "master_1_port": "6378", "master_1_link_status": "down",
        "master_1_last_io_seconds_ago": "-1", "slave_repl_offset": "42",
        "slave_read_only": "1",
        "slave0": "ip=10.0.0.9,port=6379,state=online,offset=17,lag=0",
        "slave1": "ip=10.0.0.8,port=6379,state=wait_bgsave,offset=oops,lag=0",
        "slave2": "garbage",
        "slave3": "ip=10.0.0.7,port=6380,state=online,offset=5",
    }  # fmt: skip
    add_replication(out, fields)
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in out.families()
        for s in family.samples
    }

    def at(spec: catalog.MetricSpec, **labels: str) -> float | None:
        return got.get((spec.name, tuple(sorted(labels.items()))))

    assert at(catalog.REDIS_MASTER_LINK_UP, master_host="kdb0", master_port="6377") == 1
    assert at(catalog.REDIS_MASTER_LINK_UP, master_host="kdb1", master_port="6378") == 0
    assert at(catalog.REDIS_MASTER_LAST_IO, master_host="kdb1", master_port="6378") == -1
    assert at(catalog.REDIS_SLAVE_REPL_OFFSET, master_host="kdb1", master_port="6378") == 42
    assert at(catalog.REDIS_SLAVE_INFO, master_host="kdb0", master_port="6377", read_only="1")
    replica = {"slave_ip": "10.0.0.9", "slave_port": "6379", "slave_state": "online"}
    assert at(catalog.REDIS_CONNECTED_SLAVE_OFFSET, **replica) == 17
    assert at(catalog.REDIS_CONNECTED_SLAVE_LAG, **replica) == 0
    old = {"slave_ip": "10.0.0.7", "slave_port": "6380", "slave_state": "online"}
    assert at(catalog.REDIS_CONNECTED_SLAVE_OFFSET, **old) == 5
    assert at(catalog.REDIS_CONNECTED_SLAVE_LAG, **old) is None  # Redis < 3: no lag
    assert out.skipped == 2  # slave1's offset and slave2
    assert not any(re.search("oops|garbage", str(k)) for k in got)
