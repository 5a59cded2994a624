"""/alerts for a browser: states with their evidence, transitions, thresholds."""

from __future__ import annotations

import requests

from cachewatch import Exporter
from cachewatch.web.server import HttpServer

from .analysis_helpers import feed_thrashing_and_calm


def test_the_alerts_as_a_page(exporter: Exporter, http: HttpServer) -> None:
    feed_thrashing_and_calm(exporter)
    url = f"http://127.0.0.1:{http.port}/alerts"
    page = requests.get(url, headers={"Accept": "text/html"}, timeout=5)
    text = page.text
    assert "<title>cachewatch alerts: 3 firing</title>" in text
    assert "<h2>Alert states: 3 firing, 0 pending</h2>" in text
    assert "eviction_ratio=0.875 &gt; 0.2 (warning)" in text
    transitions = text[text.index("Recent transitions") : text.index("Alerts and thresholds")]
    assert transitions.count('<span class="state firing">firing</span>') == 3
    thresholds = text[text.index("Alerts and thresholds") :]
    assert "warning below 0.8 for 30s; critical below 0.5 for 30s" in thresholds
    assert "CacheSourceDown" in thresholds
    assert requests.get(url, timeout=5).json()["firing"] == 3  # curl still gets JSON
