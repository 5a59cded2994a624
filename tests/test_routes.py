"""The HTTP endpoints: landing page, metrics in both formats, health, and bad requests."""

from __future__ import annotations

import socket
import subprocess

import requests

import cachewatch
from cachewatch import CacheRegistry
from cachewatch.web.server import HttpServer

from .scrape import fetch
from .servers import require_binary


def _url(http: HttpServer, path: str) -> str:
    return f"http://127.0.0.1:{http.port}{path}"


def _fill(registry: CacheRegistry) -> None:
    cache = cachewatch.instrument({}, "web", registry=registry, latency_sample_every=1)
    cache["a"] = b"x" * 100
    cache.get("a")
    cache.get("b")
    cachewatch.cache_metrics("web", registry=registry).cleanup(1, 0.01, "scheduled")


def test_the_status_page_links_every_page(http: HttpServer) -> None:
    page = requests.get(_url(http, "/"), timeout=5)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    for path in ("metrics", "health", "-/ready"):  # relative: mounted elsewhere, still right
        assert f'href="{path}"' in page.text


def test_json_to_programs_html_to_browsers(http: HttpServer) -> None:
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    cases = [
        (browser, "text/html"), ("text/html", "text/html"), ("*/*", "application/json"),
        (None, "application/json"), ("application/json", "application/json"),
    ]  # fmt: skip
    for accept, kind in cases:
        headers = {} if accept is None else {"Accept": accept}
        response = requests.get(_url(http, "/health"), headers=headers, timeout=5)
        assert response.headers["Content-Type"].startswith(kind), accept
        assert response.headers["Vary"] == "Accept"


def test_metrics_pass_promtool(cache_table: CacheRegistry, http: HttpServer) -> None:
    _fill(cache_table)
    text = fetch(http.port)
    assert 'cache_gets_total{cache="web",result="hit"} 1.0' in text
    assert 'cachewatch_build_info{version="' in text
    assert "process_resident_memory_bytes" in text
    check = subprocess.run(
        [require_binary("promtool"), "check", "metrics"],
        input=text.encode(),
        capture_output=True,
        timeout=30,
    )
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()


def test_openmetrics_when_the_scraper_asks(cache_table: CacheRegistry, http: HttpServer) -> None:
    _fill(cache_table)
    response = requests.get(
        _url(http, "/metrics"),
        headers={"Accept": "application/openmetrics-text; version=1.0.0"},
        timeout=5,
    )
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")
    assert "# UNIT cachewatch_cache_memory_bytes bytes" in response.text


def test_health_is_json_with_checks(http: HttpServer) -> None:
    response = requests.get(_url(http, "/health"), timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["checks"]["source:local"]["ok"] is True


def test_unknown_paths_other_methods_and_head(http: HttpServer) -> None:
    assert requests.get(_url(http, "/nope"), timeout=5).status_code == 404
    post = requests.post(_url(http, "/metrics"), timeout=5)
    assert post.status_code == 405
    assert post.headers["Allow"] == "GET, HEAD"
    assert requests.delete(_url(http, "/health"), timeout=5).status_code == 405
    head = requests.head(_url(http, "/metrics"), timeout=5)
    assert head.status_code == 200 and head.content == b""


def test_malformed_request_is_a_client_error(http: HttpServer) -> None:
    with socket.create_connection(("127.0.0.1", http.port), timeout=5) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1 extra-words\r\n\r\n")  # a broken request line
        reply = sock.recv(200)
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert requests.get(_url(http, "/health"), timeout=5).status_code == 200


def test_embedded_api_serves_the_default_registry() -> None:
    cache = cachewatch.instrument({}, "embedded_example")
    cache["k"] = 1
    cache.get("k")
    server = cachewatch.start_http_server(0)
    try:
        text = fetch(server.port)
        assert 'cache_gets_total{cache="embedded_example",result="hit"}' in text
    finally:
        server.shutdown()
