"""The poller: concurrent callers share one round, the sampler reuses the last scrape's
round, and a broken source is reported down without breaking anyone."""

from __future__ import annotations

import threading
import time

from cachewatch.analysis.engine import Analysis
from cachewatch.config import AnalysisSettings
from cachewatch.exporter import Exporter
from cachewatch.snapshot import SourceSnapshot
from cachewatch.sources.poller import Poller
from cachewatch.sources.redis import RedisSource
from cachewatch.web.routes import make_wsgi_app
from cachewatch.web.server import serve

from .redisdata import calls, client, commandstats, settings_for
from .scrape import fetch
from .servers import RedisServer


class CountingSource:
    """A source that takes ``delay`` seconds per poll and counts its polls."""

    def __init__(self, name: str = "slow", delay: float = 0.0, fail: bool = False) -> None:
        self.name = name
        self.delay = delay
        self.fail = fail
        self.polls = 0

    def poll(self) -> SourceSnapshot:
        self.polls += 1
        time.sleep(self.delay)
        if self.fail:
            raise ConnectionError("down")
        return SourceSnapshot(self.name, True, time.time(), self.delay)

    def close(self) -> None:
        return None


def test_concurrent_polls_share_one_round() -> None:
    source = CountingSource(delay=0.3)
    poller = Poller([source])
    results: list[list[SourceSnapshot]] = []
    threads = [threading.Thread(target=lambda: results.append(poller.poll())) for _ in range(8)]
    for thread in threads:
        thread.start()
        time.sleep(0.01)
    for thread in threads:
        thread.join(5)
    assert len(results) == 8 and all(r[0].up for r in results)
    assert source.polls == 1 and poller.rounds == 1
    poller.poll()  # nothing is cached once the round finished
    assert source.polls == 2


def test_recent_reuses_a_young_round_and_polls_an_old_one() -> None:
    source = CountingSource()
    poller = Poller([source])
    first, age = poller.recent(10.0)  # nothing yet: a fresh round
    assert source.polls == 1 and 0.0 <= age < 1.0
    again, age = poller.recent(10.0)
    assert source.polls == 1 and again == first and 0.0 <= age < 1.0
    time.sleep(0.05)
    poller.recent(0.01)  # older than asked for: polled again
    assert source.polls == 2
    assert poller.latest()[0].source == "slow"


def test_a_round_is_dated_the_same_fresh_or_reused() -> None:
    """The sampler dates a sample ``now - age``: a fresh round whose poll took 0.2 s and the
    same round reused later must get one date, never a later one first (the trend fits need
    samples in time order)."""
    poller = Poller([CountingSource(delay=0.2)])
    started = time.time()
    _, fresh_age = poller.recent(10.0)
    fresh_date = time.time() - fresh_age
    time.sleep(0.05)
    _, reused_age = poller.recent(10.0)
    reused_date = time.time() - reused_age
    assert fresh_age >= 0.2
    assert started <= fresh_date < started + 0.1
    assert abs(reused_date - fresh_date) < 0.02


def test_a_source_that_raises_is_down_and_counted() -> None:
    broken, fine = CountingSource("broken", fail=True), CountingSource("fine")
    poller = Poller([broken, fine])
    snapshots = {s.source: s for s in poller.poll()}
    assert snapshots["broken"].up is False and snapshots["broken"].error == "ConnectionError"
    assert snapshots["fine"].up is True
    assert poller.errors["broken"].value == 1 and poller.errors["fine"].value == 0


def test_scrapes_and_the_sampler_share_the_polls_of_redis(redis: RedisServer) -> None:
    """With scrapes as frequent as samples, Redis receives one INFO per scrape: the sampler
    thread takes the round the last scrape made instead of polling again."""
    source = RedisSource(settings_for(redis), start_census=False)
    exporter = Exporter([source], process_metrics=False)
    analysis: Analysis = exporter.attach_analysis(AnalysisSettings(sample_interval=0.5))
    server = serve(make_wsgi_app(exporter), "127.0.0.1", 0)
    conn = client(redis)
    try:
        fetch(server.port)
        before = commandstats(conn)
        samples_before = analysis.sampler.samples
        scrapes = 20
        for _ in range(scrapes):
            fetch(server.port)
            time.sleep(0.1)
        after = commandstats(conn)
        sampled = analysis.sampler.samples - samples_before
    finally:
        server.shutdown()
        exporter.close()
    assert sampled >= 3  # the sampler ran all along ...
    info = calls(before, after, "info") - 1  # (our own INFO commandstats)
    assert scrapes <= info <= scrapes + 1  # ... without polling Redis itself
