"""Redis as deployed, for the tests: a master with replicas, Sentinels watching it, and a
Redis Cluster of several masters, all real servers on free loopback ports, stopped and
cleaned up after. Waits are bounded in count and time."""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis

from .servers import LOOPBACK, ManagedProcess, RedisServer, free_port, require_binary

SLOTS = 16384


def wait_until(condition: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    """Poll ``condition`` every 50 ms until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError, OSError):
            if condition():
                return
        time.sleep(0.05)
    raise TimeoutError(f"not within {timeout}s: {what}")


def connect(port: int, password: str | None = None) -> redis.Redis:
    return redis.Redis(
        host=LOOPBACK, port=port, password=password, socket_timeout=10, decode_responses=True
    )


class SentinelServer(ManagedProcess):
    """``redis-sentinel`` watching one master, with short failure-detection times."""

    def __init__(
        self,
        workdir: Path,
        master_name: str,
        master_port: int,
        quorum: int,
        password: str | None = None,
        master_password: str | None = None,
    ) -> None:
        port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "sentinel.conf"
        lines = [
            f"port {port}", f"bind {LOOPBACK}", f"dir {workdir}",
            f"sentinel monitor {master_name} {LOOPBACK} {master_port} {quorum}",
            f"sentinel down-after-milliseconds {master_name} 1000",
            f"sentinel failover-timeout {master_name} 10000",
        ]  # fmt: skip
        if password:
            lines.append(f"requirepass {password}")
        if master_password:
            lines.append(f"sentinel auth-pass {master_name} {master_password}")
        config.write_text("\n".join(lines) + "\n")
        self.password = password
        super().__init__([require_binary("redis-sentinel"), str(config)], port, workdir)

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}"


@dataclass
class ReplicaSet:
    """A master, its replicas and (optionally) the Sentinels watching them."""

    master: RedisServer
    replicas: list[RedisServer]
    sentinels: list[SentinelServer] = field(default_factory=list)
    name: str = "mymaster"
    password: str | None = None

    @property
    def servers(self) -> list[RedisServer]:
        return [self.master, *self.replicas]

    def current_master_port(self) -> int:
        sentinel = connect(self.sentinels[0].port, self.sentinels[0].password)
        _, port = sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)
        return int(port)


def _start_all(processes: Sequence[ManagedProcess], stack: contextlib.ExitStack) -> None:
    for process in processes:
        stack.callback(process.stop)
        process.start()


@contextlib.contextmanager
def replica_set(
    replicas: int = 1,
    sentinels: int = 0,
    password: str | None = None,
    sentinel_password: str | None = None,
) -> Iterator[ReplicaSet]:
    """A master with ``replicas`` replicas in sync, and ``sentinels`` Sentinels (quorum: a
    majority) that see all of them; with passwords, Redis and the Sentinels require them."""
    extra = ["--requirepass", password, "--masterauth", password] if password else []
    with (
        tempfile.TemporaryDirectory(prefix="cachewatch-replicas-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        root = Path(tmp)
        (root / "master").mkdir()
        master = RedisServer(root / "master", extra=extra)
        _start_all([master], stack)
        followers = []
        for index in range(replicas):
            workdir = root / f"replica{index}"
            workdir.mkdir()
            followers.append(
                RedisServer(workdir, extra=[*extra, "--replicaof", LOOPBACK, str(master.port)])
            )
        _start_all(followers, stack)
        wait_until(
            lambda: connect(master.port, password).info("replication")["connected_slaves"]
            == replicas
            and all(connect(r.port, password).info("replication")["master_link_status"] == "up"
                    for r in followers),
            what="replicas in sync",
        )  # fmt: skip
        group = ReplicaSet(master, followers, password=password)
        quorum = sentinels // 2 + 1
        group.sentinels = [
            SentinelServer(
                root / f"sentinel{i}", group.name, master.port, quorum, sentinel_password,
                password,
            )
            for i in range(sentinels)
        ]  # fmt: skip
        _start_all(group.sentinels, stack)
        if sentinels:

            def seen() -> bool:
                for sentinel in group.sentinels:
                    info = connect(sentinel.port, sentinel_password).info("sentinel")
                    master_line = info.get("master0", {})
                    if master_line.get("status") != "ok":
                        return False
                    if int(master_line.get("slaves", 0)) != replicas:
                        return False
                    if int(master_line.get("sentinels", 0)) != sentinels:
                        return False
                return True

            wait_until(seen, what="sentinels see the master, its replicas and each other")
        yield group


@dataclass
class Cluster:
    """A Redis Cluster of masters (and replicas, when asked) on loopback ports."""

    nodes: list[ClusterNodeServer]
    root: Path

    @property
    def masters(self) -> list[RedisServer]:
        return [n for n in self.nodes if connect(n.port).info("replication")["role"] == "master"]

    @property
    def seed(self) -> RedisServer:
        return self.nodes[0]

    def client(self) -> redis.RedisCluster:
        return redis.RedisCluster(host=LOOPBACK, port=self.seed.port, socket_timeout=10)

    def start_node(self) -> ClusterNodeServer:
        """One more cluster-enabled server, not yet part of the cluster."""
        workdir = self.root / f"node{len(self.nodes)}"
        workdir.mkdir()
        node = _cluster_node(workdir)
        node.start()
        self.nodes.append(node)
        return node

    def node_id(self, server: RedisServer) -> str:
        return str(connect(server.port).execute_command("CLUSTER", "MYID"))

    def ok(self) -> bool:
        return all(connect(n.port).cluster("info")["cluster_state"] == "ok" for n in self.nodes)


class ClusterNodeServer(RedisServer):
    """A cluster-enabled redis-server; its bus port is chosen too (port + 10000 may be taken
    or beyond 65535)."""

    def __init__(self, workdir: Path) -> None:
        self.bus_port = free_port()
        super().__init__(
            workdir,
            extra=["--cluster-enabled", "yes", "--cluster-config-file",
                   str(workdir / "nodes.conf"), "--cluster-node-timeout", "2000",
                   "--cluster-port", str(self.bus_port)],
        )  # fmt: skip

    def meet(self, other: ClusterNodeServer) -> None:
        connect(self.port).execute_command("CLUSTER", "MEET", LOOPBACK, other.port, other.bus_port)


def _cluster_node(workdir: Path) -> ClusterNodeServer:
    return ClusterNodeServer(workdir)


@contextlib.contextmanager
def redis_cluster(masters: int = 3) -> Iterator[Cluster]:
    """``masters`` masters sharing the 16384 slots, meeting each other, state ok everywhere."""
    with (
        tempfile.TemporaryDirectory(prefix="cachewatch-cluster-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        root = Path(tmp)
        nodes = []
        for index in range(masters):
            workdir = root / f"node{index}"
            workdir.mkdir()
            nodes.append(_cluster_node(workdir))
        _start_all(nodes, stack)
        cluster = Cluster(nodes, root)
        stack.callback(lambda: [node.stop() for node in cluster.nodes])
        for index, node in enumerate(nodes):
            low, high = index * SLOTS // masters, (index + 1) * SLOTS // masters - 1
            connect(node.port).execute_command("CLUSTER", "ADDSLOTSRANGE", low, high)
            connect(node.port).execute_command("CLUSTER", "SET-CONFIG-EPOCH", index + 1)
        for node in nodes[1:]:
            node.meet(nodes[0])
        wait_until(
            lambda: cluster.ok()
            and all(int(connect(n.port).cluster("info")["cluster_known_nodes"]) == masters
                    for n in nodes),
            what="cluster state ok on every node",
        )  # fmt: skip
        yield cluster


@contextlib.contextmanager
def redis_exporter(url: str, *flags: str) -> Iterator[int]:
    """Debian's prometheus-redis-exporter watching ``url``; yields its port."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="cachewatch-redis-exporter-") as tmp:
        process = ManagedProcess(
            [require_binary("prometheus-redis-exporter"), "-redis.addr", url,
             "-web.listen-address", f"{LOOPBACK}:{port}", *flags],
            port,
            Path(tmp),
        )  # fmt: skip
        process.start()
        try:
            yield port
        finally:
            process.stop()


DEPLOYED_REDIS_TARGETS = 2
"""The targets ``deployed_redis`` adds: the replica's exporter and the cluster node's."""


def deployed_redis(stack: contextlib.ExitStack, workdir: Path, master: RedisServer) -> list[int]:
    """For the dashboards' topology panels: a replica of ``master`` and a one-node cluster
    holding every slot, each watched by an exporter of its own (Redis series only), served;
    their ports (one Prometheus target each)."""
    from cachewatch.config import files, load_config
    from cachewatch.exporter import Exporter
    from cachewatch.sources.redis import RedisSource
    from cachewatch.web.routes import make_wsgi_app
    from cachewatch.web.server import serve

    workdir.mkdir(parents=True, exist_ok=True)
    ports = []
    for name, extra in (
        ("replica", ["--replicaof", LOOPBACK, str(master.port)]),
        ("cluster-node", ["--cluster-enabled", "yes", "--cluster-port", str(free_port()),
                          "--cluster-config-file", str(workdir / "cluster-node" / "nodes.conf")]),
    ):  # fmt: skip
        (workdir / name).mkdir()
        server = RedisServer(workdir / name, extra=extra).start()
        stack.callback(server.stop)
        if name == "cluster-node":
            connect(server.port).execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        config = load_config("serve", {"redis_addr": server.url}, environ={})
        exporter = Exporter([RedisSource(files.redis_settings(config))], process_metrics=False)
        stack.callback(exporter.close)
        http = serve(make_wsgi_app(exporter), LOOPBACK, 0)
        stack.callback(http.shutdown)
        ports.append(int(http.port))
    return ports
