"""The name-and-label comparison with redis_exporter, shared by the topology tests: every
series Debian's redis_exporter publishes for a server, cachewatch publishes too (under the
names of ``catalog.REDIS_EXPORTER_RENAMED`` where redis_exporter's fail Prometheus's lint),
with at least the same label names."""

from __future__ import annotations

import re

import requests

from cachewatch import catalog

from .servers import LOOPBACK
from .topology import redis_exporter

# What redis_exporter publishes that cachewatch does not: its own scrape accounting, and
# SLOWLOG, LATENCY and latencystats, which would cost round trips or Redis CPU per scrape.
NOT_PUBLISHED = {
    "redis_exporter_build_info", "redis_exporter_last_scrape_connect_time_seconds",
    "redis_exporter_last_scrape_duration_seconds", "redis_exporter_last_scrape_error",
    "redis_exporter_scrape_duration_seconds_count", "redis_exporter_scrape_duration_seconds_sum",
    "redis_exporter_scrapes_total", "redis_target_scrape_request_errors_total",
    "redis_last_key_groups_scrape_duration_milliseconds",
    "redis_last_slow_execution_duration_seconds", "redis_slowlog_last_id", "redis_slowlog_length",
    "redis_latency_percentiles_usec", "redis_latency_percentiles_usec_count",
    "redis_latency_percentiles_usec_sum",
    # redis_exporter reads the fourth field of a keyspace line as KeyDB's cached_keys, by
    # position; on Valkey 8+ that field is keys_with_volatile_items. cachewatch reads
    # cached_keys by name.
    "redis_db_keys_cached",
}  # fmt: skip

Series = dict[str, set[frozenset[str]]]
"""Sample name -> the label-name sets it has."""


_SAMPLE = re.compile(r"^(redis_[a-zA-Z0-9_:]*)(?:\{(.*)\})? ", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="(?:[^"\\]|\\.)*"')


def series(text: str) -> Series:
    """Sample names as written (a parser would rename counters) and their label names."""
    found: Series = {}
    for match in _SAMPLE.finditer(text):
        labels = frozenset(_LABEL.findall(match.group(2) or ""))
        found.setdefault(match.group(1), set()).add(labels)
    return found


def theirs(url: str, *flags: str) -> str:
    """What Debian's redis_exporter publishes for the server at ``url`` now."""
    with redis_exporter(url, *flags) as port:
        return requests.get(f"http://{LOOPBACK}:{port}/metrics", timeout=10).text


def missing(their_text: str, our_text: str) -> dict[str, str]:
    """What redis_exporter has and cachewatch lacks: name -> why."""
    ours = series(our_text)
    problems: dict[str, str] = {}
    for name, label_sets in series(their_text).items():
        if name in NOT_PUBLISHED:
            continue
        mine = catalog.REDIS_EXPORTER_RENAMED.get(name, name)
        if mine not in ours:
            problems[name] = "not published"
            continue
        for labels in label_sets:
            if not any(labels <= our_labels for our_labels in ours[mine]):
                problems[name] = f"labels {sorted(labels)} not in {sorted(map(sorted, ours[mine]))}"
    return problems
