"""INFO parsing: every published value equals what INFO says; malformed input never crashes."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import pytest
import redis as redis_py
from hypothesis import given, settings
from hypothesis import strategies as st
from redis._parsers.helpers import parse_info as redis_py_parse_info

from cachewatch import catalog
from cachewatch.sources.redis_info import info_families, parse_info, to_number

from .redisdata import client, fill
from .servers import RedisServer


def _values(families: list[Any]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in families:
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _raw_info(server: RedisServer) -> str:
    conn = client(server)
    conn.set_response_callback("INFO", lambda response, **_: response)
    text = conn.execute_command("INFO", "ALL")
    conn.close()
    return text.decode()


def test_every_value_equals_info_as_redis_py_reads_it(redis: RedisServer) -> None:
    conn = client(redis)
    fill(conn, "user:", 500)
    conn.set("session:1", "x", ex=1000)
    conn.get("user:0-1")
    conn.get("missing")
    conn.execute_command("SELECT", 3)
    with contextlib.suppress(redis_py.ResponseError):  # for an errorstat entry
        conn.execute_command("NOSUCHCOMMAND")
    text = _raw_info(redis)
    reference = redis_py_parse_info(text)  # redis-py's own, independent parser
    families, skipped = info_families(parse_info(text), now=0)
    values = _values(families)
    assert skipped == 0

    checked = 0
    for entry in catalog.REDIS_INFO_FIELDS:
        if entry.field not in reference:
            continue
        expected = to_number(str(reference[entry.field]))
        assert expected is not None, entry.field
        got = values[(entry.spec.sample_name, ())]
        assert got == pytest.approx(expected * entry.scale, rel=1e-12), entry.spec.name
        checked += 1
    assert checked > 80  # Redis 7 fills nearly the whole table

    assert values[("redis_db_keys", (("db", "db0"),))] == reference["db0"]["keys"] == 501
    assert values[("redis_db_keys_expiring", (("db", "db0"),))] == reference["db0"]["expires"]
    for key, stats in reference.items():
        if key.startswith("cmdstat_"):
            cmd = (("cmd", key.removeprefix("cmdstat_")),)
            assert values[("redis_commands_total", cmd)] == stats["calls"]
            duration = values[("redis_commands_duration_seconds_total", cmd)]
            assert duration == pytest.approx(stats["usec"] / 1e6, rel=1e-12)
        if key.startswith("errorstat_"):
            err = (("err", key.removeprefix("errorstat_")),)
            assert values[("redis_errors_total", err)] == stats["count"]
    assert values[("redis_commands_total", (("cmd", "get"),))] == 2
    assert values[("redis_keyspace_hits_total", ())] == reference["keyspace_hits"] == 1
    assert values[("redis_keyspace_misses_total", ())] == reference["keyspace_misses"] == 1
    assert values[("redis_memory_used_bytes", ())] == reference["used_memory"]
    start = reference["server_time_usec"] / 1e6 - reference["uptime_in_seconds"]
    assert values[("redis_start_time_seconds", ())] == start
    info_labels = dict(next(k for k in values if k[0] == "redis_instance_info")[1])
    assert info_labels["redis_version"] == reference["redis_version"]
    assert info_labels["tcp_port"] == str(redis.port)
    assert info_labels["role"] == "master"


def test_base_units_for_the_redis_7_health_fields() -> None:
    text = (
        "total_eviction_exceeded_time:1500\r\nexpire_cycle_cpu_milliseconds:250\r\n"
        "expired_stale_perc:12.50\r\nlatest_fork_usec:2000\r\ndb2:keys=5,expires=1,avg_ttl=3000\r\n"
    )
    values = _values(info_families(parse_info(text), db_indices=[0])[0])
    assert values[("redis_eviction_exceeded_time_seconds_total", ())] == 1.5
    assert values[("redis_expire_cycle_cpu_time_seconds_total", ())] == 0.25
    assert values[("redis_expired_stale_ratio", ())] == 0.125
    assert values[("redis_expired_stale_percentage", ())] == 12.5
    assert values[("redis_latest_fork_seconds", ())] == 0.002
    assert values[("redis_db_avg_ttl_seconds", (("db", "db2"),))] == 3.0
    assert values[("redis_db_keys", (("db", "db0"),))] == 0  # configured but empty


def test_malformed_fields_are_skipped_and_counted() -> None:
    text = "\r\n".join(
        [
            "# Server",
            "used_memory:12abc",  # not a number
            "no colon here",
            ":no key",
            "connected_clients:7",
            "maxmemory:" + "9" * 5000,  # huge
            "evicted_keys:nan",
            "cmdstat_get:calls=3,usec=9,garbage",
            "db0:keys=x,expires=1",
            "rdb_last_bgsave_status:ok",
            "aof_last_write_status:err",
            "something_new:42",  # unknown fields are ignored, not counted
        ]
    )
    info = parse_info(text)
    families, skipped = info_families(info)
    values = _values(families)
    assert values[("redis_connected_clients", ())] == 7
    assert values[("redis_commands_total", (("cmd", "get"),))] == 3
    assert values[("redis_rdb_last_bgsave_status", ())] == 1
    assert values[("redis_aof_last_write_status", ())] == 0
    assert ("redis_memory_used_bytes", ()) not in values
    assert ("redis_evicted_keys_total", ()) not in values
    # used_memory, 2 bad lines, huge maxmemory, nan, cmdstat garbage, db0 keys=x
    assert skipped == 7


def test_redis_py_dicts_are_accepted() -> None:
    parsed = {
        "connected_clients": 3,
        "used_memory": 1024,
        "db0": {"keys": 10, "expires": 2, "avg_ttl": 0},
        "cmdstat_set": {"calls": 4, "usec": 8},
        "odd": [1, 2],
        "flag": True,
    }
    families, skipped = info_families(parse_info(parsed))
    values = _values(families)
    assert values[("redis_connected_clients", ())] == 3
    assert values[("redis_db_keys", (("db", "db0"),))] == 10
    assert values[("redis_commands_duration_seconds_total", (("cmd", "set"),))] == 8e-6
    assert skipped == 2


def test_cardinality_of_commands_is_bounded() -> None:
    text = "\n".join(f"cmdstat_c{i}:calls=1,usec=1" for i in range(5000))
    families, skipped = info_families(parse_info(text))
    calls = next(f for f in families if f.name == "redis_commands")
    assert len(calls.samples) == 1000
    assert skipped == 4000


def test_number_conversion() -> None:
    assert to_number("1.5") == 1.5
    assert to_number("ok") == 1 and to_number("down") == 0
    assert to_number("inf") is None and to_number("") is None and to_number("1" * 100) is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=3000))
def test_arbitrary_text_never_raises(text: str) -> None:
    families, skipped = info_families(parse_info(text), db_indices=[0, 1])
    assert skipped >= 0
    for family in families:
        for sample in family.samples:
            assert math.isfinite(sample.value)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=20),
        st.one_of(
            st.integers(), st.floats(), st.text(max_size=50), st.none(),
            st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5))),
        ),
        max_size=30,
    )
)  # fmt: skip
def test_arbitrary_dicts_never_raise(reply: dict[str, Any]) -> None:
    families, _ = info_families(parse_info(reply))
    for family in families:
        for sample in family.samples:
            assert math.isfinite(sample.value)
