"""A Sentinel as a scrape target (sources/sentinel.py): INFO's Sentinel section and what the
SENTINEL commands say of each master, beside Debian's redis_exporter on real Sentinels."""

from __future__ import annotations

from cachewatch import catalog
from cachewatch.sources.infofields import FamilyBuilder
from cachewatch.sources.redis import RedisSource
from cachewatch.sources.sentinel import MasterDetails, add_sentinel_info, add_sentinel_masters

from . import parity
from .redisdata import settings_for
from .scrape import fetch, samples, value
from .servers import LOOPBACK, RedisServer
from .test_redis import served
from .topology import ReplicaSet


def _sentinel_server(group: ReplicaSet, index: int = 0) -> RedisServer:
    """A Sentinel, addressed like a Redis server (it answers INFO)."""
    sentinel = group.sentinels[index]
    server = RedisServer(sentinel.workdir, port=sentinel.port)
    return server


def test_names_and_labels_match_redis_exporter(watched: ReplicaSet) -> None:
    sentinel = _sentinel_server(watched)
    theirs = parity.theirs(sentinel.url)
    with served(RedisSource(settings_for(sentinel), start_census=False)) as port:
        ours = fetch(port)
        fetch(port)  # the second poll pipelines SENTINEL MASTERS with INFO
    assert "redis_sentinel_master_ok_sentinels" in theirs
    assert parity.missing(theirs, ours) == {}


def test_sentinel_metrics_say_what_the_sentinels_see(watched: ReplicaSet) -> None:
    sentinel = _sentinel_server(watched, 1)
    source = RedisSource(settings_for(sentinel), start_census=False)
    with served(source) as port:
        first = samples(port)
        second = samples(port)
    master = {"master_name": watched.name, "master_address": f"{LOOPBACK}:{watched.master.port}"}
    for found in (first, second):
        assert value(found, "redis_up") == 1
        assert value(found, "redis_sentinel_masters") == 1
        assert value(found, "redis_sentinel_tilt") == 0
        assert value(found, "redis_sentinel_master_status", **master, master_status="ok") == 1
        assert value(found, "redis_sentinel_master_slaves", **master) == 1
        assert value(found, "redis_sentinel_master_sentinels", **master) == 2
        assert value(found, "redis_sentinel_master_ok_sentinels", **master) == 2
        assert value(found, "redis_sentinel_master_ok_slaves", **master) == 1
        assert value(found, "redis_sentinel_master_setting_ckquorum", **master) == 2
        assert value(found, "redis_sentinel_master_setting_down_after_seconds", **master) == 1
        assert value(found, "redis_sentinel_master_setting_failover_timeout", **master) == 10000
        assert value(found, "redis_sentinel_master_setting_parallel_syncs", **master) == 1
        assert value(found, "redis_sentinel_master_config_epoch", **master) == 0
        ping = value(found, "redis_sentinel_master_last_ok_ping_reply_seconds", **master)
        assert ping is not None and 0 <= ping < 5
        quorum = [k for k in found if k[0] == "redis_sentinel_master_ckquorum_status"]
        assert len(quorum) == 1 and found[quorum[0]] == 1
        assert dict(quorum[0][1])["message"].startswith("OK 2 usable Sentinels")
        # Sentinel has no CONFIG: nothing forbidden about it, so nothing said about it
        assert value(found, "cachewatch_redis_config_readable") is None
    assert source.mode == "sentinel"


def test_down_peers_are_not_counted_and_odd_lines_are_skipped() -> None:
    out = FamilyBuilder()
    add_sentinel_info(
        out,
        {
            "sentinel_masters": "2",
            "master0": "name=a,status=sdown,address=10.0.0.1:6379,slaves=2,sentinels=3",
            "master1": "name=b,status=ok,address=10.0.0.2:6379,slaves=x,sentinels=3",
        },
    )
    master = {"name": "a", "ip": "10.0.0.1", "port": "6379", "down-after-milliseconds": "5000"}
    add_sentinel_masters(
        out,
        [
            MasterDetails(
                master=master,
                quorum_ok=False,
                quorum_message="NOQUORUM 1 usable Sentinels",
                sentinels=[{"flags": "sentinel"}, {"flags": "s_down,sentinel"}, {}],
                replicas=[{"flags": "slave"}, {"flags": "o_down,slave"}],
            )
        ],
    )
    got = {
        (s.name, frozenset(s.labels.items())): s.value for f in out.families() for s in f.samples
    }
    a = frozenset({("master_name", "a"), ("master_address", "10.0.0.1:6379")})
    assert got[(catalog.REDIS_SENTINEL_MASTER_STATUS.name, a | {("master_status", "sdown")})] == 0
    assert got[(catalog.REDIS_SENTINEL_MASTER_OK_SENTINELS.name, a)] == 2
    assert got[(catalog.REDIS_SENTINEL_MASTER_OK_SLAVES.name, a)] == 1
    assert got[(catalog.REDIS_SENTINEL_MASTER_DOWN_AFTER.name, a)] == 5
    quorum = frozenset({("master_name", "a"), ("message", "NOQUORUM 1 usable Sentinels")})
    assert got[(catalog.REDIS_SENTINEL_MASTER_CKQUORUM.name, quorum)] == 0
    assert not any(dict(labels).get("master_name") == "b" for _, labels in got)
    assert out.skipped == 1
