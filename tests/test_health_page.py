"""/health for a browser: the verdict and every check, with the same status code."""

from __future__ import annotations

import requests

from cachewatch import CacheRegistry, Exporter
from cachewatch.config import RedisSettings
from cachewatch.config.redisurl import parse_redis_address
from cachewatch.sources.local import LocalSource
from cachewatch.sources.redis import RedisSource
from cachewatch.web.routes import make_wsgi_app
from cachewatch.web.server import serve

from .servers import free_port


def test_an_unhealthy_page_keeps_its_503(cache_table: CacheRegistry) -> None:
    address = parse_redis_address(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens
    settings = RedisSettings(address=address, connect_timeout=0.3, socket_timeout=0.3)
    exporter = Exporter([RedisSource(settings), LocalSource(cache_table)], caches=cache_table)
    server = serve(make_wsgi_app(exporter), "127.0.0.1", 0)
    try:
        exporter.poller.poll()
        url = f"http://127.0.0.1:{server.port}/health"
        page = requests.get(url, headers={"Accept": "text/html"}, timeout=5)
        assert page.status_code == 503
        assert "<title>cachewatch health: unhealthy</title>" in page.text
        assert '<td data-label="Check">source:redis</td>' in page.text
        assert '<span class="state failing">failing</span>' in page.text
        assert "error=" in page.text and "up=False" in page.text
        assert '<span class="state ok">ok</span>' in page.text  # source:local
        assert requests.get(url, timeout=5).status_code == 503
    finally:
        server.shutdown()
        exporter.close()
