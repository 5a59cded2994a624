"""A real Prometheus with the repository's rules follows thresholds changed at run time,
without anyone regenerating or editing the rule files.

Two services run the same cache at a 90% hit ratio, below no threshold. Raising one
service's threshold for the cache (a reload of its configuration file) makes its
CacheHitRatioLow fire, with the raised threshold in the annotations, and the other service's
stays quiet; lowering it at run time (``configure_alert_threshold``) resolves it.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from scripts import stack as stack_launcher

import cachewatch
from cachewatch import CacheRegistry, Exporter, instrument
from cachewatch.config import load_config
from cachewatch.config.files import SettingsFiles
from cachewatch.exporter import build
from cachewatch.sources.local import LocalSource
from cachewatch.web.routes import make_wsgi_app
from cachewatch.web.server import serve

from .servers import LOOPBACK, ManagedProcess, free_port

pytestmark = pytest.mark.slow

CACHE = "search_cache"
ALERT = "CacheHitRatioLow"
WINDOWS = {"5m": "10s", "30m": "30s", "6h": "2m"}
WAITS = {"5m": "2s"}


@dataclass
class Service:
    job: str
    exporter: Exporter
    config: Path


class Lookups:
    """90% hits on ``CACHE`` of each registry, a few hundred lookups a second."""

    def __init__(self, registries: list[CacheRegistry]) -> None:
        self.caches = [instrument({}, CACHE, registry=r) for r in registries]
        self.rng = random.Random(3)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lookups", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            for cache in self.caches:
                for _ in range(10):
                    key = "hot" if self.rng.random() < 0.9 else f"cold:{self.rng.random()}"
                    if cache.get(key) is None:
                        cache[key] = b"x"

    def __enter__(self) -> Lookups:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[Service], str]]:
    workdir = tmp_path_factory.mktemp("thresholds")
    with contextlib.ExitStack() as stack:
        services, registries, targets = [], [], {}
        for job in ("search-api", "ranking-api"):
            config_file = workdir / f"{job}.yml"
            config_file.write_text("alerts:\n  hit_ratio_warning: 0.8\n")
            flags = {"config_file": str(config_file), "sample_interval": "1s"}
            config = load_config("serve", flags, environ={})
            registry = CacheRegistry()
            exporter = build(
                config,
                SettingsFiles(),
                [LocalSource(registry)],
                registry,
                reload=lambda flags=flags: load_config("serve", flags, environ={}),  # type: ignore[misc]
            )
            stack.callback(exporter.close)
            http = serve(make_wsgi_app(exporter), LOOPBACK, 0)
            stack.callback(http.shutdown)
            services.append(Service(job, exporter, config_file))
            registries.append(registry)
            targets[job] = [f"{LOOPBACK}:{http.port}"]
        stack.enter_context(Lookups(registries))
        port = free_port()
        config = stack_launcher.render_prometheus(
            workdir, targets=targets, alertmanagers=[], windows=WINDOWS, waits=WAITS,
            scrape_interval="1s", evaluation_interval="1s",
        )  # fmt: skip
        prometheus = ManagedProcess(
            stack_launcher.prometheus_command(config, f"{LOOPBACK}:{port}"),
            port,
            workdir / "prometheus",
        ).start(timeout=20)
        stack.callback(prometheus.stop)
        base = f"http://{LOOPBACK}:{port}"
        until(lambda: _answers(f"{base}/-/ready"), 30, "Prometheus ready")
        yield services, base


def _answers(url: str) -> bool:
    with contextlib.suppress(requests.RequestException):
        return requests.get(url, timeout=2).status_code == 200
    return False


def alerts(base: str) -> list[dict[str, Any]]:
    body = requests.get(f"{base}/api/v1/alerts", timeout=10).json()
    return [a for a in body["data"]["alerts"] if a["labels"]["alertname"] == ALERT]


def query(base: str, expr: str) -> list[dict[str, Any]]:
    body = requests.get(f"{base}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen within {timeout}s")


def test_a_threshold_raised_at_run_time_fires_and_lowered_resolves(
    running: tuple[list[Service], str],
) -> None:
    (search, _), base = running
    ratio = f'cache:hit_ratio:rate5m{{cache="{CACHE}"}}'
    until(lambda: len(query(base, f"{ratio} > 0.85")) == 2, 60, "both services at 90% hits")
    until(lambda: len(query(base, 'cache:alert_threshold{alertname="CacheHitRatioLow"}')) == 4,
          30, "the thresholds in force recorded")  # fmt: skip
    assert alerts(base) == [], "fired before any threshold changed"

    # Raised in search-api's file, for the cache, and reloaded: no rule file changes.
    search.config.write_text(
        "alerts:\n  hit_ratio_warning: 0.8\n"
        f"  overrides: {{{CACHE}: {{hit_ratio_warning: 0.97}}}}\n"
    )
    assert search.exporter.reload().ok
    firing = until(
        lambda: [a for a in alerts(base) if a["state"] == "firing"], 60, f"{ALERT} firing"
    )
    assert [a["labels"]["job"] for a in firing] == ["search-api"]
    (alert,) = firing
    assert (alert["labels"]["severity"], alert["labels"]["cache"]) == ("warning", CACHE)
    assert alert["annotations"]["threshold"] == "97%"
    time.sleep(3)  # the other service, with the same hit ratio, stays quiet
    assert {a["labels"]["job"] for a in alerts(base)} == {"search-api"}

    # Lowered at run time from the application: resolved.
    cachewatch.configure_alert_threshold(ALERT, 0.7, cache=CACHE, exporter=search.exporter)
    until(lambda: not alerts(base), 60, f"{ALERT} resolved")
    assert not [a for a in alerts(base) if a["labels"]["job"] == "ranking-api"]
