"""The bundle's servers, started natively on loopback for the end-to-end tests.

Real redis-server, Prometheus and Alertmanager run with the repository's rule files and
routing; only addresses, file paths and timings are rewritten (by ``scripts/stack.py``, the
launcher of ``make stack``).
The cachewatch exporter runs in the test process: the Redis source of ``serve`` (server stats
and a logical cache by prefix) plus instrumented in-process caches whose workload the test
steers.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis as redis_client
import requests
from cachetools import TTLCache
from scripts import stack as stack_launcher

from cachewatch import CacheRegistry, instrument
from cachewatch.config import files, load_config
from cachewatch.config.files import SettingsFiles
from cachewatch.exporter import build
from cachewatch.sources.local import LocalSource
from cachewatch.sources.redis import RedisSource
from cachewatch.tracing import spans
from cachewatch.web.routes import make_wsgi_app
from cachewatch.web.server import serve

from .otlp_receiver import OtlpReceiver, otlp_receiver
from .receivers import Inbox, smtp_server, webhook_server
from .servers import LOOPBACK, ManagedProcess, RedisServer, free_port
from .topology import deployed_redis

ROOT = Path(__file__).resolve().parent.parent
TARGET_CACHE = "search_cache"
# Rule timings scaled down so that a whole alert cycle takes seconds, not minutes.
WINDOWS = {"5m": "10s", "30m": "30s", "6h": "2m"}
WAITS = {"5m": "2s", "1m": "2s"}
AM_TIMINGS = {"group_wait": "1s", "group_interval": "2s", "repeat_interval": "1h"}


class Workload:
    """Drives the test caches from a thread; ``mode`` good (hits) or bad (misses)."""

    def __init__(self, registry: CacheRegistry) -> None:
        self.mode = "good"
        self.rng = random.Random(7)
        self.search = instrument(
            TTLCache(maxsize=200, ttl=3),
            TARGET_CACHE,
            memory_limit_bytes=8 * 1024 * 1024,
            latency_sample_every=1,
            registry=registry,
        )
        self.growing = instrument(
            {}, "growing_cache", memory_limit_bytes=64 * 1024 * 1024, registry=registry
        )
        self.hot = [f"hot:{i}" for i in range(50)]
        self._fresh = 0
        self._ticks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="workload", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def tick(self) -> None:
        self._ticks += 1
        for _ in range(20):
            if self.mode == "good":
                key = self.rng.choice(self.hot)
                if self.search.get(key) is None:
                    self.search[key] = b"x" * 256
            else:
                self._fresh += 1
                key = f"fresh:{self._fresh}"
                if self.search.get(key) is None:
                    self.search[key] = b"y" * 256
        recorder = self.search.recorder
        if self._ticks % 5 == 0:
            recorder.error("get", TimeoutError())
            with contextlib.suppress(KeyError):
                del self.search[self.rng.choice(self.hot)]
        if self._ticks % 10 == 0:
            recorder.cleanup(1, 0.001, "scheduled")
        # growing_cache: memory climbs toward its limit, lookups hit.
        self.growing[f"g:{self._ticks}"] = b"z" * 2048
        for _ in range(5):
            self.growing.get(f"g:{self.rng.randint(1, self._ticks)}")

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.tick()


@dataclass
class PrometheusApi:
    """Queries against one Prometheus (and the Alertmanager it alerts)."""

    prometheus: str
    alertmanager: str

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = requests.get(
            f"{self.prometheus}/api/v1/query", params={"query": expr}, timeout=10
        ).json()
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def query_range(self, expr: str, seconds: float = 90) -> list[dict[str, Any]]:
        end = time.time()
        answer = requests.get(
            f"{self.prometheus}/api/v1/query_range",
            params={"query": expr, "start": end - seconds, "end": end, "step": "2s"},
            timeout=10,
        ).json()
        assert answer["status"] == "success", (expr, answer)
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def label_values(self, label: str, selector: str) -> list[str]:
        """Grafana's ``label_values(selector, label)`` over the last hour."""
        end = time.time()
        answer = requests.get(
            f"{self.prometheus}/api/v1/label/{label}/values",
            params={"match[]": selector, "start": end - 3600, "end": end},
            timeout=10,
        ).json()
        assert answer["status"] == "success", (label, selector, answer)
        values: list[str] = answer["data"]
        return values

    def wait_until(self, check: Any, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            time.sleep(0.5)
        raise AssertionError(f"{what} did not happen within {timeout}s")

    def prometheus_alerts(self, name: str, state: str = "firing") -> list[dict[str, Any]]:
        answer = requests.get(f"{self.prometheus}/api/v1/alerts", timeout=10).json()
        return [
            a
            for a in answer["data"]["alerts"]
            if a["labels"].get("alertname") == name and a["state"] == state
        ]


@dataclass
class Stack(PrometheusApi):
    exporter_port: int
    workload: Workload
    webhooks: Inbox
    mails: Inbox
    workdir: Path
    traces: OtlpReceiver


def ready(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout}s")


@contextlib.contextmanager
def bundle_stack(workdir: Path) -> Iterator[Stack]:
    """Everything started, torn down in reverse order whatever happens."""
    with contextlib.ExitStack() as stack:
        redis_dir = workdir / "redis"
        redis_dir.mkdir()
        redis = RedisServer(redis_dir).start()
        stack.callback(redis.stop)
        client = redis_client.Redis(host=LOOPBACK, port=redis.port)
        for i in range(50):
            client.set(f"session:{i}", "v" * 100, ex=3600 if i % 2 else None)
        client.close()

        # Tracing on (a tenth of the operations), so latency exemplars carry trace ids.
        traces = stack.enter_context(otlp_receiver())
        env = {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": traces.endpoint,
            "OTEL_SERVICE_NAME": "bundle-e2e",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_TRACES_SAMPLER": "traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.1",
        }
        assert spans.setup_tracing(env, set_global=False) is not None
        stack.callback(spans.shutdown_tracing)

        # The standalone exporter's Redis source and in-process caches, in one exporter.
        config = load_config(
            "serve",
            {
                "redis_addr": redis.url,
                "redis_caches": ["sessions=session:"],
                "sample_interval": "1s",
                "trend_window": "30s",
            },
            environ={},
        )
        registry = CacheRegistry()
        redis_source = RedisSource(files.redis_settings(config))
        exporter = build(config, SettingsFiles(), [redis_source, LocalSource(registry)], registry)
        stack.callback(exporter.close)
        workload = Workload(registry)
        workload.start()
        stack.callback(workload.stop)
        http = serve(make_wsgi_app(exporter), LOOPBACK, 0)
        stack.callback(http.shutdown)
        # Redis as deployed, for the topology panels: a replica of that Redis and a one-node
        # cluster, each watched by an exporter of its own (one Prometheus target each).
        node_ports = deployed_redis(stack, workdir, redis)

        smtp_port, mails = stack.enter_context(smtp_server())
        webhook_port, webhooks = stack.enter_context(webhook_server())

        password = workdir / "smtp_password"
        password.write_text("not-a-real-password")
        am_port = free_port()
        am_dir = workdir / "alertmanager"
        am_config = stack_launcher.render_alertmanager(
            workdir,
            smtp=f"{LOOPBACK}:{smtp_port}",
            webhook_url=f"http://{LOOPBACK}:{webhook_port}/alertmanager",
            password_file=password,
            timings=AM_TIMINGS,
        )
        alertmanager_url = f"http://{LOOPBACK}:{am_port}"
        alertmanager = ManagedProcess(
            stack_launcher.alertmanager_command(am_config, workdir, f"{LOOPBACK}:{am_port}"),
            am_port,
            am_dir,
        ).start()
        stack.callback(alertmanager.stop)

        prom_port = free_port()
        prom_dir = workdir / "prometheus"
        prom_config = stack_launcher.render_prometheus(
            workdir,
            targets={"cachewatch": [f"{LOOPBACK}:{p}" for p in (http.port, *node_ports)]},
            alertmanagers=[f"{LOOPBACK}:{am_port}"],
            windows=WINDOWS,
            waits=WAITS,
            scrape_interval="1s",
            evaluation_interval="1s",
        )
        prometheus = ManagedProcess(
            stack_launcher.prometheus_command(prom_config, f"{LOOPBACK}:{prom_port}"),
            prom_port,
            prom_dir,
        ).start(timeout=20)
        stack.callback(prometheus.stop)
        prometheus_url = f"http://{LOOPBACK}:{prom_port}"
        ready(f"{prometheus_url}/-/ready")
        ready(f"{alertmanager_url}/-/ready")
        yield Stack(
            prometheus_url, alertmanager_url, http.port, workload, webhooks, mails, workdir, traces
        )
