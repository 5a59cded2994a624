"""Shared fixtures: a fresh cache registry and exporter per test, real servers on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cachewatch import CacheRegistry, Exporter
from cachewatch.sources.local import LocalSource
from cachewatch.tracing import spans
from cachewatch.web.routes import make_wsgi_app
from cachewatch.web.server import HttpServer, serve

from .servers import RedisServer, redis_server
from .topology import Cluster, ReplicaSet, redis_cluster, replica_set


@pytest.fixture
def cache_table() -> CacheRegistry:
    return CacheRegistry()


@pytest.fixture
def exporter(cache_table: CacheRegistry) -> Iterator[Exporter]:
    built = Exporter([LocalSource(cache_table)], caches=cache_table)
    yield built
    built.close()


@pytest.fixture
def http(exporter: Exporter) -> Iterator[HttpServer]:
    """The exporter served on a free loopback port."""
    server = serve(make_wsgi_app(exporter), "127.0.0.1", 0)
    yield server
    server.shutdown()


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """A three-master Redis Cluster shared by the tests that only read it (the tests that
    change a topology make their own)."""
    with redis_cluster(masters=3) as running:
        yield running


@pytest.fixture(scope="session")
def watched() -> Iterator[ReplicaSet]:
    """A master with a replica and two Sentinels watching them, shared by the tests that
    only read them (the failover test makes its own)."""
    with replica_set(replicas=1, sentinels=2) as group:
        yield group


@pytest.fixture(autouse=True)
def _no_tracing_left_on() -> Iterator[None]:
    """A test that turned tracing on and failed midway must not trace the tests after it."""
    yield
    spans.shutdown_tracing()
