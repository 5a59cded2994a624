"""/-/healthy and /-/ready against a real redis-server that is up, stopped and restarted;
the probes answer without basic auth, /health behind it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import requests

from cachewatch import CacheRegistry, Exporter
from cachewatch.config import RedisSettings
from cachewatch.config.redisurl import parse_redis_address
from cachewatch.config.webconfig import load_web_config
from cachewatch.sources.local import LocalSource
from cachewatch.sources.redis import RedisSource
from cachewatch.web.routes import make_wsgi_app
from cachewatch.web.server import HttpServer, serve

from .servers import RedisServer

BACKOFF = 1.5
"""The Redis source's first retry delay: long enough to see it while Redis is back."""


@pytest.fixture
def redis_exporter(
    cache_table: CacheRegistry, redis: RedisServer
) -> Iterator[tuple[Exporter, HttpServer]]:
    settings = RedisSettings(
        address=parse_redis_address(redis.url), connect_timeout=0.5, socket_timeout=0.5
    )
    source = RedisSource(settings, backoff_initial=BACKOFF, backoff_max=BACKOFF)
    built = Exporter([source, LocalSource(cache_table)], caches=cache_table)
    server = serve(make_wsgi_app(built), "127.0.0.1", 0)
    yield built, server
    server.shutdown()
    built.close()


def probe(port: int, path: str) -> tuple[int, str]:
    response = requests.get(f"http://127.0.0.1:{port}{path}", timeout=5)
    assert response.headers["Content-Type"] == "text/plain"
    return response.status_code, response.text


def test_probes_while_redis_is_up_down_restarting_and_up_again(
    redis_exporter: tuple[Exporter, HttpServer], redis: RedisServer
) -> None:
    exporter, http = redis_exporter
    assert probe(http.port, "/-/healthy") == (200, "cachewatch is Healthy.\n")
    # Before the first poll: alive, not ready; and the probe itself polls nothing.
    assert probe(http.port, "/-/ready") == (
        503, "cachewatch is not ready: not polled yet: redis, local\n"
    )  # fmt: skip
    assert exporter.poller.rounds == 0

    exporter.poller.poll()
    assert probe(http.port, "/-/ready") == (200, "cachewatch is Ready.\n")

    redis.stop()
    exporter.poller.poll()
    assert probe(http.port, "/-/ready") == (
        503, "cachewatch is not ready: last poll failed: redis\n"
    )  # fmt: skip
    assert probe(http.port, "/-/healthy")[0] == 200
    assert requests.get(f"http://127.0.0.1:{http.port}/health", timeout=5).status_code == 503

    redis.start()  # back, but the source waits out its backoff before it reconnects
    exporter.poller.poll()
    assert probe(http.port, "/-/ready")[0] == 503
    assert probe(http.port, "/-/healthy")[0] == 200

    deadline = time.monotonic() + 10 * BACKOFF
    while time.monotonic() < deadline:
        exporter.poller.poll()
        if probe(http.port, "/-/ready")[0] == 200:
            break
        time.sleep(0.2)
    assert probe(http.port, "/-/ready") == (200, "cachewatch is Ready.\n")
    head = requests.head(f"http://127.0.0.1:{http.port}/-/ready", timeout=5)
    assert head.status_code == 200 and head.content == b""


def test_probes_answer_without_the_basic_auth_that_guards_the_rest(
    tmp_path: Path, exporter: Exporter
) -> None:
    hashed = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode()
    path = tmp_path / "web.yml"
    path.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    server = serve(make_wsgi_app(exporter), "127.0.0.1", 0, load_web_config(str(path)))
    try:
        url = f"http://127.0.0.1:{server.port}"
        exporter.poller.poll()
        assert requests.get(f"{url}/-/healthy", timeout=5).status_code == 200
        assert requests.get(f"{url}/-/ready", timeout=5).text == "cachewatch is Ready.\n"
        for guarded in ("/", "/health", "/metrics", "/-/readyx", "/-/ready/"):
            assert requests.get(url + guarded, timeout=5).status_code == 401, guarded
        authorized = requests.get(f"{url}/health", auth=("prometheus", "secret"), timeout=5)
        assert authorized.status_code == 200
    finally:
        server.shutdown()
