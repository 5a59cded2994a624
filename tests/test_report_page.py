"""/report for a browser: every cache with its numbers, alerts, advice and sparklines."""

from __future__ import annotations

import re

import requests

from cachewatch import Exporter
from cachewatch.web.server import HttpServer

from .analysis_helpers import feed_thrashing_and_calm

HTML = {"Accept": "text/html"}


def test_the_report_as_a_page(exporter: Exporter, http: HttpServer) -> None:
    feed_thrashing_and_calm(exporter)
    page = requests.get(f"http://127.0.0.1:{http.port}/report", headers=HTML, timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    text = page.text
    assert "<title>cachewatch report: 2 caches</title>" in text
    assert re.findall(r'<section class="card" id="cache-(\w+)">', text) == ["calm", "thrash"]
    thrash = text[text.index('id="cache-thrash"') :]
    assert '<span class="state critical">critical</span>' in thrash
    assert "<dt>hit ratio</dt><dd>20.0% recent" in thrash
    assert "<dt>entries</dt><dd>100 of 100</dd>" in thrash
    assert "evicted before they are reused" in thrash  # the advice, with its evidence:
    assert "evictions_per_put=0.875, hit_ratio=0.2, max_entries=100" in thrash
    assert "hit_ratio=0.2 &lt; 0.5 (critical)" in thrash
    assert "pts/h" in thrash  # a ratio's trend in points per hour
    assert thrash.count('<svg class="spark') == 2
