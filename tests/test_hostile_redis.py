"""A Redis-protocol peer that answers INFO with malformed, huge or unexpected fields, or breaks
the protocol: the exporter skips what it cannot parse, counts it, keeps its series bounded,
always answers the scrape, and never crashes (redis_exporter panicked on crafted INFO: its
issue #1115)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from cachewatch import Exporter
from cachewatch.config import RedisSettings
from cachewatch.config.redisurl import parse_redis_address
from cachewatch.sources.redis import RedisSource
from cachewatch.sources.redis_info import MAX_COMMANDS, MAX_DATABASES
from cachewatch.web.routes import make_wsgi_app
from cachewatch.web.server import HttpServer, serve

from .fake_redis import FakeRedis, Reply, bulk, fake_redis

NORMAL = (
    b"# Server\r\nredis_version:7.0.15\r\nuptime_in_seconds:100\r\n"
    b"# Clients\r\nconnected_clients:3\r\n"
    b"# Memory\r\nused_memory:1048576\r\nmaxmemory:0\r\n"
    b"# Stats\r\nkeyspace_hits:10\r\nkeyspace_misses:5\r\nevicted_keys:0\r\n"
    b"# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=0\r\n"
)


class Peer:
    """What the fake peer answers to INFO right now (tests switch it)."""

    def __init__(self) -> None:
        self.reply: Reply = bulk(NORMAL)

    def __call__(self) -> Reply:
        return self.reply


@pytest.fixture
def peer() -> Iterator[tuple[Peer, FakeRedis]]:
    answers = Peer()
    with fake_redis(answers) as server:
        yield answers, server


@pytest.fixture
def scraped(peer: tuple[Peer, FakeRedis]) -> Iterator[HttpServer]:
    _, server = peer
    settings = RedisSettings(
        address=parse_redis_address(server.url), connect_timeout=1.0, socket_timeout=1.0
    )
    source = RedisSource(settings, backoff_initial=0.05, backoff_max=0.1)
    exporter = Exporter([source], process_metrics=False)
    http = serve(make_wsgi_app(exporter), "127.0.0.1", 0)
    yield http
    http.shutdown()
    exporter.close()


def scrape(http: HttpServer) -> tuple[float, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """(seconds taken, samples) of one /metrics scrape, which must answer 200."""
    start = time.monotonic()
    response = requests.get(f"http://127.0.0.1:{http.port}/metrics", timeout=15)
    took = time.monotonic() - start
    assert response.status_code == 200
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return took, found


def get(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float | None:
    return found.get((name, ()))


JUNK_FIELDS = (
    b"# Server\r\nredis_version:7.0\r\n"
    b"a line without a colon\r\n"
    b"\x00\xff\xfe:\x01\x02\r\n"
    b"keyspace_hits:abc\r\n"
    b"used_memory:-5\r\n"
    b"maxmemory:1e400\r\n"
    b"connected_clients:nan\r\n"
    b"uptime_in_seconds:12:34:56\r\n"
    b"db0:keys=abc,expires=1\r\n"
    b"db1:keys=5,expires=2,avg_ttl=x\r\n"
    b"dbX:keys=1\r\n"
    b"db99999999999999999999:keys=1,expires=0\r\n"
    b"cmdstat_get:calls=x,usec=1\r\n"
    b"cmdstat_:calls=1\r\n"
    b"errorstat_ERR:count=\xff\r\n"
    b"# \xe2\x98\x83 Unicode section\r\n"
    b"\xe2\x98\x83:\xe2\x98\x83\r\n"
    b"rdb_last_bgsave_status:ok\r\n\r\n\r\n"
    b"\r\r\r:::\r\n"
)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(JUNK_FIELDS, id="malformed-fields"),
        pytest.param(NORMAL + b"big_value:" + b"9" * 8_000_000 + b"\r\n", id="8MB-value"),
        pytest.param(
            NORMAL + b"".join(b"field_%d:%d\r\n" % (i, i) for i in range(100_000)),
            id="100k-unknown-fields",
        ),
        pytest.param(
            NORMAL
            + b"# Commandstats\r\n"
            + b"".join(b"cmdstat_c%d:calls=1,usec=1\r\n" % i for i in range(20_000)),
            id="20k-commands",
        ),
        pytest.param(
            NORMAL + b"".join(b"db%d:keys=1,expires=0,avg_ttl=0\r\n" % i for i in range(10_000)),
            id="10k-databases",
        ),
        pytest.param(NORMAL + b"\n".join([b"x" * 100_000] * 30), id="long-lines"),
        pytest.param(b"", id="empty"),
        pytest.param(bytes(range(256)) * 100, id="binary"),
    ],
)  # fmt: skip
def test_hostile_info_is_skipped_counted_and_bounded(
    peer: tuple[Peer, FakeRedis], scraped: HttpServer, payload: bytes
) -> None:
    answers, _ = peer
    _, baseline = scrape(scraped)
    answers.reply = bulk(payload)
    took, found = scrape(scraped)
    assert took < 10
    assert get(found, "redis_up") == 1.0  # the reply was well-formed RESP: Redis is up
    if payload:
        unparsed = get(found, "cachewatch_redis_info_unparsed_fields")
        assert unparsed is not None and unparsed > 0, "skipped fields are counted"
    # Bounded whatever the input: at most MAX_COMMANDS commands (2 series each), at most
    # MAX_DATABASES databases (3 series each) and no series per unknown field.
    bound = len(baseline) + 2 * MAX_COMMANDS + 3 * MAX_DATABASES
    assert len(found) < bound, "a hostile INFO cannot explode the series"
    assert not any(len(value) > 4_096 for key in found for _, value in key[1])
    answers.reply = bulk(NORMAL)
    _, again = scrape(scraped)
    assert get(again, "redis_up") == 1.0
    assert get(again, "redis_connected_clients") == 3.0


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(b"-ERR something odd\r\n", id="error-reply"),
        pytest.param(b":42\r\n", id="integer"),
        pytest.param(b"*2\r\n$1\r\na\r\n$1\r\nb\r\n", id="array"),
        pytest.param(b"$-1\r\n", id="null"),
        pytest.param(b"$100\r\nshort", id="truncated-then-closed"),
        pytest.param(b"$99999999999\r\n", id="absurd-length"),
        pytest.param(b"%1\r\n+a\r\n+b\r\n", id="resp3-map-unasked"),
        pytest.param(b"!garbage\r\n", id="unknown-type"),
    ],
)
def test_protocol_breakage_is_redis_down_then_recovery(
    peer: tuple[Peer, FakeRedis], scraped: HttpServer, reply: bytes
) -> None:
    answers, server = peer
    answers.reply = reply
    took, found = scrape(scraped)
    assert took < 5
    assert get(found, "redis_up") in (0.0, 1.0)
    assert found[("cachewatch_source_up", (("source", "redis"),))] in (0.0, 1.0)
    answers.reply = bulk(NORMAL)
    deadline = time.monotonic() + 10
    while True:
        time.sleep(0.15)  # past the backoff
        _, found = scrape(scraped)
        if get(found, "redis_up") == 1.0:
            break
        assert time.monotonic() < deadline, "did not recover from a broken reply"
    assert get(found, "redis_connected_clients") == 3.0
    assert server.connections >= 1


def test_a_peer_that_never_answers_costs_a_scrape_one_timeout(
    peer: tuple[Peer, FakeRedis], scraped: HttpServer
) -> None:
    answers, _ = peer
    answers.reply = b""  # RESP needs at least a type byte: the client waits, then times out
    took, found = scrape(scraped)
    assert get(found, "redis_up") == 0.0
    assert took < 3  # socket timeout 1 s, plus scrape overhead
    took, found = scrape(scraped)  # within the backoff: answered at once
    assert get(found, "redis_up") == 0.0
    assert took < 1
