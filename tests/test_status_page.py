"""The live status page at /: what it shows, its Content-Security-Policy, its links; and the
demo's page in Debian's Chromium: four caches with sparklines, a cold-phase alert appearing
without a reload, no console errors, readable at 1280 px and at phone width."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

import cachewatch
from cachewatch import CacheRegistry, Exporter
from cachewatch.config.webconfig import load_web_config
from cachewatch.web.routes import make_wsgi_app
from cachewatch.web.server import HttpServer, serve

from .analysis_helpers import analysis_config, feed_thrashing_and_calm
from .browser import chromium, console_errors, emulate
from .servers import LOOPBACK, free_port, wait_for_port

DEMO_CACHES = ("embedding_cache", "file_cache", "project_cache", "search_cache")
COLD_ALERTS = ("CacheHitRatioLow", "CacheEvictionRateHigh", "CacheErrorRateHigh")


def get(http: HttpServer, path: str, **kwargs: object) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{http.port}{path}", timeout=5, **kwargs)  # type: ignore[arg-type]


def test_the_page_shows_every_cache_alert_and_source(exporter: Exporter, http: HttpServer) -> None:
    feed_thrashing_and_calm(exporter)
    page = get(http, "/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    text = page.text
    rows = re.findall(r'<tr><td data-label="Cache"><a href="report#cache-(\w+)">', text)
    assert rows == ["calm", "thrash"]
    # Sparklines of the trend window's samples: hit ratio for both, memory where known.
    ratio_lines = re.findall(r'<svg class="spark ratio"[^>]*data-points="(\d+)"', text)
    memory_lines = re.findall(r'<svg class="spark memory"[^>]*data-points="(\d+)"', text)
    assert [int(n) >= 8 for n in ratio_lines] == [True, True]
    assert len(memory_lines) == 1 and int(memory_lines[0]) == 10
    assert "20.0%" in text and "99.0%" in text and "100 / 100 (100%)" in text
    # Firing alerts with their evidence, the source's health.
    assert "CacheHitRatioLow" in text and "hit_ratio=0.2 &lt; 0.5 (critical)" in text
    assert "eviction_ratio=0.875 &gt; 0.2 (warning)" in text
    assert '<td data-label="Source">local</td>' in text
    assert "3 firing" in text
    for path in ("./", "report", "alerts", "health", "metrics"):
        assert f'href="{path}"' in text
    assert "<script>" in text and 'id="updated"' in text


def test_the_live_part_is_what_the_script_swaps_in(exporter: Exporter, http: HttpServer) -> None:
    feed_thrashing_and_calm(exporter)
    part = get(http, "/?part=live")
    assert part.status_code == 200
    assert part.text.startswith('<div id="live" data-title="cachewatch: 2 caches, 3 firing"')
    assert "<html" not in part.text and "<script" not in part.text
    assert 'data-refresh="10"' in part.text  # every sample interval (10 s here)
    whole = get(http, "/").text
    assert part.text in whole


def test_nothing_is_loaded_from_outside_and_the_policy_says_so(
    exporter: Exporter, http: HttpServer
) -> None:
    import base64
    import hashlib

    feed_thrashing_and_calm(exporter)
    page = get(http, "/")
    policy = page.headers["Content-Security-Policy"]
    assert policy.startswith("default-src 'none';")
    assert "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
    for tag in ("style", "script"):
        (inline,) = re.findall(rf"<{tag}>(.*?)</{tag}>", page.text, flags=re.S)
        digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
        assert f"{tag}-src 'sha256-{digest}'" in policy
    assert not re.search(r'(src|href)="(https?:)?//', page.text)  # nothing from elsewhere
    assert page.headers["Referrer-Policy"] == "no-referrer"
    for path in ("/report", "/alerts", "/health"):
        html = get(http, path, headers={"Accept": "text/html"})
        assert "script-src 'none'" in html.headers["Content-Security-Policy"]
        assert "<script" not in html.text


def test_links_to_the_tools_appear_only_when_configured(
    exporter: Exporter, http: HttpServer
) -> None:
    assert ">Grafana<" not in get(http, "/").text
    exporter.links = {"grafana": "http://grafana.example:3000", "prometheus": None,
                      "alertmanager": "https://am.example", "jaeger": None}  # fmt: skip
    text = get(http, "/").text
    assert '<a class="external" href="http://grafana.example:3000" rel="noreferrer noopener">' \
        "Grafana</a>" in text  # fmt: skip
    assert ">Alertmanager<" in text and ">Prometheus<" not in text and ">Jaeger<" not in text
    assert (
        "http://grafana.example:3000" in get(http, "/health", headers={"Accept": "text/html"}).text
    )


def test_link_settings_refuse_credentials() -> None:
    from cachewatch.config import ConfigError, load_config

    config = load_config("serve", {"links_jaeger_url": "http://jaeger:16686/"}, environ={})
    assert config.links.by_tool()["jaeger"] == "http://jaeger:16686"
    with pytest.raises(ConfigError, match=r"links\.grafana-url.*credentials"):
        load_config("serve", {"links_grafana_url": "http://admin:pw@grafana:3000"}, environ={})


def test_hostile_cache_names_are_escaped(
    exporter: Exporter, http: HttpServer, cache_table: CacheRegistry
) -> None:
    hostile = cachewatch.instrument({}, '<img src=x onerror="alert(1)">', registry=cache_table)
    hostile["k"] = "v"
    exporter.attach_analysis(analysis_config(), start=False).sampler.sample()
    text = get(http, "/").text
    assert "<img src=x" not in text
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in text


def test_the_pages_are_behind_the_same_auth(tmp_path: Path, exporter: Exporter) -> None:
    hashed = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode()
    (tmp_path / "web.yml").write_text(f"basic_auth_users:\n  admin: '{hashed}'\n")
    server = serve(
        make_wsgi_app(exporter), "127.0.0.1", 0, load_web_config(str(tmp_path / "web.yml"))
    )
    try:
        for path in ("/", "/?part=live", "/report", "/alerts", "/health"):
            anonymous = get(server, path, headers={"Accept": "text/html"})
            assert anonymous.status_code == 401, path
            assert "cachewatch" not in anonymous.text.replace("realm=", "")
        assert get(server, "/", auth=("admin", "secret")).status_code == 200
    finally:
        server.shutdown()


# --- the demo in a real browser -----------------------------------------------------------------
@pytest.fixture(scope="module")
def demo() -> Iterator[str]:
    """``cachewatch demo`` at speed 5: the steady phase lasts 12 s, then the cold phase."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cachewatch.cli", "demo", "--web.listen-address",
         f"{LOOPBACK}:{port}", "--demo.speed", "5", "--duration", "2m",
         "--links.grafana-url", "http://localhost:3000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port, 30)
        yield f"http://{LOOPBACK}:{port}"
    finally:
        process.terminate()
        process.wait(20)


ROWS = """return [...document.querySelectorAll('#live tr')].map(tr => Object.fromEntries(
    [...tr.querySelectorAll('td')].map(td => [td.dataset.label, td.textContent.trim()])))"""
"""Every row of the live part as {column: text}, read at once (the script swaps the part)."""


def visible_alerts(driver: WebDriver, state: str = "") -> set[str]:
    """The alerts the page shows now (those in ``state`` only, when given)."""
    rows = driver.execute_script(ROWS)
    return {r["Alert"] for r in rows if "Alert" in r and (not state or r.get("State") == state)}


def visible_caches(driver: WebDriver) -> list[str]:
    return [r["Cache"] for r in driver.execute_script(ROWS) if "Hit ratio" in r]


def test_the_demo_in_chromium(demo: str, tmp_path: Path) -> None:
    with chromium() as driver:
        driver.get(demo + "/")
        assert driver.title.startswith("cachewatch: 4 caches")
        assert not visible_alerts(driver) & set(COLD_ALERTS), "opened after the cold phase began"
        driver.execute_script("window.loadedOnce = true")  # a reload would forget it

        # The four caches, each with a hit-ratio sparkline drawn from at least two samples.
        deadline = time.monotonic() + 20
        count = "return document.querySelectorAll('#live svg.spark.%s polyline').length"
        while time.monotonic() < deadline:
            if visible_caches(driver) == list(DEMO_CACHES) and driver.execute_script(
                count % "ratio"
            ) == len(DEMO_CACHES):
                break
            time.sleep(0.5)
        assert visible_caches(driver) == list(DEMO_CACHES)
        assert driver.execute_script(count % "ratio") == 4
        assert driver.execute_script(count % "memory") == 3  # project_cache has no memory

        # A cold-phase alert appears, pending then firing, without a reload.
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline and not visible_alerts(driver, "firing") & set(
            COLD_ALERTS
        ):
            time.sleep(0.5)
        assert visible_alerts(driver, "firing") & set(COLD_ALERTS)
        assert driver.execute_script("return window.loadedOnce") is True
        assert driver.find_element(By.ID, "updated").text.startswith("updated ")
        assert "firing" in driver.title and not driver.title.endswith(" 0 firing")

        sources = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
        )
        assert sources and all(url.startswith(demo + "/") for url in sources), sources
        wide = tmp_path / "status-1280.png"
        driver.save_screenshot(str(wide))
        assert driver.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth"
        )

        emulate(driver, 390, 844)  # a phone
        time.sleep(1)
        assert driver.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth"
        ), "the page scrolls sideways at phone width"
        label = driver.find_element(By.CSS_SELECTOR, '#live td[data-label="Hit ratio"]')
        assert label.is_displayed() and "%" in label.text
        phone = tmp_path / "status-390.png"
        driver.save_screenshot(str(phone))

        emulate(driver, 1280, 900)
        driver.get(demo + "/report")  # a browser gets the report as a page
        assert driver.title.startswith("cachewatch report: 4 caches")
        assert len(driver.find_elements(By.CSS_SELECTOR, "section.card")) == 4
        assert console_errors(driver) == []
    for shot in (wide, phone):
        assert shot.stat().st_size > 10_000
    print(f"\nscreenshots: {wide} {phone}")
