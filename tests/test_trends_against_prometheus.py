"""The trend gauges agree with a real Prometheus's ``deriv()`` over the same window.

A cache fills at a steady rate; Prometheus scrapes the exporter every second while the
sampler samples twice a second; both fit a least-squares line over the same 20 s window.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cachetools import LRUCache

from cachewatch import CacheRegistry, Exporter, instrument
from cachewatch.web.server import HttpServer

from .analysis_helpers import analysis_config
from .servers import LOOPBACK, ManagedProcess, free_port, require_binary

WINDOW = 20.0


@pytest.fixture
def prometheus(http: HttpServer) -> Iterator[ManagedProcess]:
    """A real Prometheus scraping the exporter every second."""
    with tempfile.TemporaryDirectory(prefix="cachewatch-prometheus-") as tmp:
        workdir = Path(tmp)
        (workdir / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: cachewatch\n    static_configs:\n"
            f"      - targets: ['{LOOPBACK}:{http.port}']\n"
        )
        port = free_port()
        server = ManagedProcess(
            [
                require_binary("prometheus"),
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address={LOOPBACK}:{port}",
            ],
            port,
            workdir,
        )
        server.start(timeout=20)
        try:
            yield server
        finally:
            server.stop()


def query(prometheus: ManagedProcess, expr: str, at: float) -> float | None:
    response = requests.get(
        f"http://{LOOPBACK}:{prometheus.port}/api/v1/query",
        params={"query": expr, "time": f"{at:.3f}"},
        timeout=5,
    )
    response.raise_for_status()
    result = response.json()["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_slopes_agree_with_prometheus_deriv(
    cache_table: CacheRegistry,
    exporter: Exporter,
    http: HttpServer,
    prometheus: ManagedProcess,
) -> None:
    analysis = exporter.attach_analysis(
        analysis_config(sample_interval=0.5, trend_window=WINDOW), start=True
    )
    cache = instrument(LRUCache(maxsize=1_000_000), "filling", registry=cache_table)
    stop = threading.Event()

    def fill() -> None:
        n = 0
        start = time.monotonic()
        while not stop.is_set():
            target = int((time.monotonic() - start) * 400)  # 400 entries a second
            while n < target:
                cache[f"key-{n}"] = b"x" * 200
                n += 1
            stop.wait(0.01)

    writer = threading.Thread(target=fill, daemon=True)
    writer.start()
    try:
        deadline = time.monotonic() + WINDOW + 15
        up = None
        while time.monotonic() < deadline:  # until Prometheus has a full window of scrapes
            time.sleep(1)
            up = query(prometheus, 'count_over_time(up{job="cachewatch"}[20s])', time.time())
            if up is not None and up >= WINDOW - 1:
                break
        assert up is not None and up >= WINDOW - 1, prometheus.log()[-2000:]
        at = analysis.sampler.last_sample
        assert at is not None
        registry = exporter.registry
        ours = {
            "memory": registry.get_sample_value(
                "cachewatch_cache_memory_growth_bytes_per_second", {"cache": "filling"}
            ),
            "size": registry.get_sample_value(
                "cachewatch_cache_size_growth_per_second", {"cache": "filling"}
            ),
        }
        time.sleep(1.5)  # let the scrape around ``at`` land in Prometheus
    finally:
        stop.set()
        writer.join(5)
    theirs = {
        "memory": query(
            prometheus, 'deriv(cachewatch_cache_memory_bytes{cache="filling"}[20s])', at
        ),
        "size": query(prometheus, 'deriv(cache_size{cache="filling"}[20s])', at),
    }
    print(f"trend gauges {ours} against Prometheus deriv() {theirs}")
    assert ours["size"] is not None and theirs["size"] is not None
    assert ours["size"] == pytest.approx(400.0, rel=0.1)  # the rate the writer fills at
    assert ours["size"] == pytest.approx(theirs["size"], rel=0.02)
    assert ours["memory"] is not None and theirs["memory"] is not None
    assert ours["memory"] > 0
    assert ours["memory"] == pytest.approx(theirs["memory"], rel=0.02)
