"""The scale-out stack, on real engines: two "cluster" Prometheus servers (external label
``cluster``: a, b), each scraping its own exporters, remote-writing everything to a global
Prometheus (2.42's remote-write receiver: the protocol of Thanos Receive and Mimir) that
evaluates the rules generated with ``cluster,job`` as group labels and alerts to a real
Alertmanager with the routing generated for the same labels.

Every cluster runs the same services: ``search-api`` (two replicas) and ``ranking-api`` (one),
both with a ``search_cache``, and ``cachewatch`` (the Redis source of ``serve``). The exporters
run in the test process; one thread drives every workload. Configs come from
``scripts/stack.py``'s renderers: only addresses, paths and timings are rewritten.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis as redis_client
from scripts import stack as stack_launcher

from cachewatch import CacheRegistry
from cachewatch.config import files, load_config
from cachewatch.config.files import SettingsFiles
from cachewatch.exporter import build
from cachewatch.sources import Source
from cachewatch.sources.local import LocalSource
from cachewatch.sources.redis import RedisSource
from cachewatch.web.routes import make_wsgi_app
from cachewatch.web.server import serve

from .bundle_stack import AM_TIMINGS, WAITS, WINDOWS, PrometheusApi, Workload, ready
from .receivers import Inbox, webhook_server
from .servers import LOOPBACK, ManagedProcess, RedisServer, free_port
from .topology import deployed_redis

CLUSTERS = ("a", "b")
SERVICES = {"search-api": 2, "ranking-api": 1}
GROUP_LABELS = "cluster,job"
BAD = {("a", "search-api"), ("b", "ranking-api")}
"""(cluster, service) whose search_cache misses: the alerts that must fire, and no others."""


@dataclass
class Fleet:
    api: PrometheusApi
    """The global Prometheus and the Alertmanager it alerts."""
    clusters: dict[str, str]
    """Cluster -> its own Prometheus's URL."""
    bundle: Path
    """The bundle generated for ``cluster,job``: rules, routing, dashboards."""
    webhooks: Inbox
    workloads: dict[tuple[str, str, int], Workload] = field(default_factory=dict)
    """(cluster, service, replica) -> its caches' workload."""


class _Driver:
    """One thread ticks every workload (instead of a thread per exporter)."""

    def __init__(self, workloads: list[Workload]) -> None:
        self.workloads = workloads
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleet-workload", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            for workload in self.workloads:
                workload.tick()


def _exporter(stack: contextlib.ExitStack, sources: list[Source], registry: CacheRegistry) -> int:
    config = load_config("serve", {"sample_interval": "1s", "trend_window": "30s"}, environ={})
    exporter = build(config, SettingsFiles(), sources, registry)
    stack.callback(exporter.close)
    http = serve(make_wsgi_app(exporter), LOOPBACK, 0)
    stack.callback(http.shutdown)
    return int(http.port)


@contextlib.contextmanager
def fleet_stack(workdir: Path) -> Iterator[Fleet]:
    """Everything started, torn down in reverse order whatever happens."""
    with contextlib.ExitStack() as stack:
        bundle = stack_launcher.generate_bundle(workdir / "bundle", GROUP_LABELS)
        (workdir / "redis").mkdir()
        redis = RedisServer(workdir / "redis").start()
        stack.callback(redis.stop)
        client = redis_client.Redis(host=LOOPBACK, port=redis.port)
        for i in range(30):
            client.set(f"session:{i}", "v" * 100, ex=3600 if i % 2 else None)
        client.close()

        workloads: dict[tuple[str, str, int], Workload] = {}
        targets: dict[str, dict[str, list[str]]] = {}
        for cluster in CLUSTERS:
            jobs: dict[str, list[str]] = {}
            for service, replicas in SERVICES.items():
                for replica in range(replicas):
                    registry = CacheRegistry()
                    workload = Workload(registry)
                    workload.mode = "bad" if (cluster, service) in BAD else "good"
                    workloads[(cluster, service, replica)] = workload
                    port = _exporter(stack, [LocalSource(registry)], registry)
                    jobs.setdefault(service, []).append(f"{LOOPBACK}:{port}")
            serve_config = load_config(
                "serve", {"redis_addr": redis.url, "redis_caches": ["sessions=session:"]},
                environ={},
            )  # fmt: skip
            source = RedisSource(files.redis_settings(serve_config))
            port = _exporter(stack, [source], CacheRegistry())
            nodes = deployed_redis(stack, workdir / cluster, redis)  # the topology panels
            jobs["cachewatch"] = [f"{LOOPBACK}:{p}" for p in (port, *nodes)]
            targets[cluster] = jobs
        driver = _Driver(list(workloads.values()))
        driver.start()
        stack.callback(driver.stop)

        webhook_port, webhooks = stack.enter_context(webhook_server())
        password = workdir / "smtp_password"
        password.write_text("not-a-real-password")
        am_port = free_port()
        am_config = stack_launcher.render_alertmanager(
            workdir,
            smtp=f"{LOOPBACK}:{free_port()}",
            webhook_url=f"http://{LOOPBACK}:{webhook_port}/alertmanager",
            password_file=password,
            timings=AM_TIMINGS,
            bundle=bundle,
        )
        alertmanager = ManagedProcess(
            stack_launcher.alertmanager_command(am_config, workdir, f"{LOOPBACK}:{am_port}"),
            am_port,
            workdir / "alertmanager",
        ).start()
        stack.callback(alertmanager.stop)

        timing = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        global_port = free_port()
        global_config = stack_launcher.render_global(
            workdir, bundle, f"{LOOPBACK}:{am_port}", windows=WINDOWS, waits=WAITS, **timing
        )
        prometheus = ManagedProcess(
            stack_launcher.prometheus_command(
                global_config, f"{LOOPBACK}:{global_port}", receiver=True
            ),
            global_port,
            global_config.parent,
        ).start(timeout=20)
        stack.callback(prometheus.stop)
        clusters: dict[str, str] = {}
        for cluster in CLUSTERS:
            port = free_port()
            config = stack_launcher.render_cluster(
                workdir, cluster, targets[cluster], f"{LOOPBACK}:{global_port}", **timing
            )
            server = ManagedProcess(
                stack_launcher.prometheus_command(config, f"{LOOPBACK}:{port}"),
                port,
                config.parent,
            ).start(timeout=20)
            stack.callback(server.stop)
            clusters[cluster] = f"http://{LOOPBACK}:{port}"
        global_url = f"http://{LOOPBACK}:{global_port}"
        alertmanager_url = f"http://{LOOPBACK}:{am_port}"
        for url in (global_url, *clusters.values()):
            ready(f"{url}/-/ready")
        ready(f"{alertmanager_url}/-/ready")
        api = PrometheusApi(global_url, alertmanager_url)
        yield Fleet(api, clusters, bundle, webhooks, workloads)
