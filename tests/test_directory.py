"""The nodes Prometheus scrapes one by one (sources/directory.py): ``cachewatch serve
--redis.cluster`` lists every node of a real cluster on /discover and scrapes each through
/probe; a real Prometheus with the scrape configuration of docs/redis.md finds them all;
Sentinel mode lists the master and its replica."""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from cachewatch.config import load_config
from cachewatch.exporter import Exporter, serve_exporter
from cachewatch.web.routes import make_wsgi_app
from cachewatch.web.server import serve

from .scrape import samples, value
from .servers import LOOPBACK, ManagedProcess, free_port, require_binary
from .topology import Cluster, ReplicaSet

DOCS = Path(__file__).resolve().parent.parent / "docs" / "redis.md"


@contextmanager
def serving(flags: dict[str, Any]) -> Iterator[tuple[Exporter, int]]:
    config = load_config("serve", {"redis_connect_timeout": "1s", **flags}, environ={})
    exporter = serve_exporter(config)
    server = serve(make_wsgi_app(exporter), LOOPBACK, 0)
    try:
        yield exporter, server.port
    finally:
        server.shutdown()
        exporter.close()


def _get(port: int, path: str, **params: str) -> requests.Response:
    return requests.get(f"http://{LOOPBACK}:{port}{path}", params=params, timeout=10)


def _probe_samples(port: int, target: str) -> dict:  # type: ignore[type-arg]
    from prometheus_client.parser import text_string_to_metric_families

    response = _get(port, "/probe", target=target)
    assert response.status_code == 200, response.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_cluster_nodes_on_discover_and_probe(cluster: Cluster) -> None:
    flags = {"redis_addr": cluster.seed.url, "redis_cluster": "true", "redis_caches": ["d=d:"]}
    with serving(flags) as (_, port):
        discovered = _get(port, "/discover")
        assert discovered.status_code == 200
        assert discovered.headers["Content-Type"].startswith("application/json")
        groups = discovered.json()
        addresses = sorted(g["targets"][0] for g in groups)
        assert addresses == sorted(f"{LOOPBACK}:{n.port}" for n in cluster.nodes)
        assert {g["labels"]["__meta_cachewatch_redis_role"] for g in groups} == {"master"}
        for node in cluster.nodes:
            found = _probe_samples(port, f"{LOOPBACK}:{node.port}")
            assert found[("redis_up", frozenset())] == 1
            assert found[("redis_cluster_state", frozenset())] == 1
            info = [dict(k[1]) for k in found if k[0] == "redis_instance_info"]
            assert info and info[0]["tcp_port"] == str(node.port)
            assert not any(k[0].startswith("cachewatch_census") for k in found)  # one census
        same = _probe_samples(port, f"redis://{LOOPBACK}:{cluster.seed.port}")
        assert same[("redis_up", frozenset())] == 1
        for bad in (f"{LOOPBACK}:{free_port()}", "10.1.2.3:6379", "example.org:80"):
            assert _get(port, "/probe", target=bad).status_code == 404
        found = samples(port)
        assert value(found, "cachewatch_redis_cluster_nodes", role="master") == 3
        assert value(found, "cachewatch_redis_cluster_slots_served") == 16384
        assert value(found, "cachewatch_redis_cluster_discovery_up") == 1
        assert value(found, "redis_up") is None  # the nodes' own series are on /probe


def test_sentinel_mode_lists_the_master_and_its_replica(watched: ReplicaSet) -> None:
    flags = {
        "redis_sentinel_addrs": [f"{LOOPBACK}:{s.port}" for s in watched.sentinels],
        "redis_sentinel_master": watched.name,
    }
    with serving(flags) as (_, port):
        groups = _get(port, "/discover").json()
        roles = {g["targets"][0]: g["labels"]["__meta_cachewatch_redis_role"] for g in groups}
        assert roles == {
            f"{LOOPBACK}:{watched.master.port}": "master",
            f"{LOOPBACK}:{watched.replicas[0].port}": "replica",
        }
        replica = _probe_samples(port, f"{LOOPBACK}:{watched.replicas[0].port}")
        assert replica[("redis_up", frozenset())] == 1
        master = {("master_host", LOOPBACK), ("master_port", str(watched.master.port))}
        assert replica[("redis_master_link_up", frozenset(master))] == 1
        found = samples(port)  # /metrics: the master itself
        assert value(found, "redis_connected_slaves") == 1
        assert _get(port, "/probe", target=f"{LOOPBACK}:{free_port()}").status_code == 404


def _documented_scrape_config(exporter: str) -> str:
    text = DOCS.read_text()
    block = re.search(r"```yaml\n(# scrape config: redis nodes.*?)```", text, re.DOTALL)
    assert block, "docs/redis.md has no scrape config block"
    return block.group(1).replace("cachewatch:10287", exporter).replace("30s", "1s")


def test_prometheus_finds_every_node_with_the_documented_config(cluster: Cluster) -> None:
    flags = {"redis_addr": cluster.seed.url, "redis_cluster": "true"}
    with serving(flags) as (_, port), tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        config = "global:\n  scrape_interval: 1s\n" + _documented_scrape_config(
            f"{LOOPBACK}:{port}"
        )
        (workdir / "prometheus.yml").write_text(config)
        prometheus_port = free_port()
        prometheus = ManagedProcess(
            [require_binary("prometheus"), f"--config.file={workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address={LOOPBACK}:{prometheus_port}"],
            prometheus_port,
            workdir,
        )  # fmt: skip
        prometheus.start(timeout=20)
        try:

            def query(expr: str) -> list[dict[str, Any]]:
                response = requests.get(
                    f"http://{LOOPBACK}:{prometheus_port}/api/v1/query",
                    params={"query": expr},
                    timeout=5,
                )
                if response.status_code == 503:  # Prometheus still starting up its TSDB
                    return []
                response.raise_for_status()
                return list(response.json()["data"]["result"])

            deadline = time.monotonic() + 30
            nodes: list[dict[str, Any]] = []
            while time.monotonic() < deadline:
                nodes = query('redis_cluster_state{job="redis-nodes"} == 1')
                exporter_up = query('up{job="cachewatch"} == 1')
                if len(nodes) == 3 and exporter_up:
                    break
                time.sleep(0.5)
            instances = sorted(n["metric"]["instance"] for n in nodes)
            assert instances == sorted(f"{LOOPBACK}:{n.port}" for n in cluster.nodes)
            assert len(query('up{job="redis-nodes"} == 1')) == 3
            assert query("cachewatch_redis_cluster_nodes{role='master'}")[0]["value"][1] == "3"
        finally:
            prometheus.stop()
