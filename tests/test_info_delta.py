"""sources/info_delta.py: INFO parsed where it changed gives what a full parse gives, and the
INFO table's families made from the changed rows alone are those made from every row."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from cachewatch import catalog
from cachewatch.exposition.encoders import render_openmetrics
from cachewatch.sources.info_delta import InfoParser
from cachewatch.sources.infofields import FamilyBuilder, FamilyMemo, InfoChange
from cachewatch.sources.redis import INFO_SECTIONS
from cachewatch.sources.redis_info import ParsedInfo, info_families, parse_info
from cachewatch.sources.resp import Client

from .redisdata import client, fill
from .servers import RedisServer

BASE = (
    "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\nuptime_in_seconds:100\r\n"
    "server_time_usec:1700000000000000\r\n\r\n# Clients\r\nconnected_clients:3\r\n"
    "blocked_clients:0\r\n\r\n# Memory\r\nused_memory:1000000\r\nmaxmemory:0\r\n"
    "mem_fragmentation_ratio:1.25\r\n\r\n# Stats\r\ntotal_commands_processed:50\r\n"
    "keyspace_hits:7\r\nkeyspace_misses:3\r\nevicted_keys:0\r\n\r\n# Replication\r\n"
    "role:master\r\nconnected_slaves:1\r\n"
    "slave0:ip=10.0.0.2,port=6379,state=online,offset=100,lag=0\r\n"
    "master_repl_offset:100\r\n\r\n# Commandstats\r\n"
    "cmdstat_get:calls=10,usec=20,usec_per_call=2.00,rejected_calls=0,failed_calls=0\r\n"
    "cmdstat_info:calls=5,usec=50,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n"
    "\r\n# Errorstats\r\nerrorstat_ERR:count=2\r\n\r\n# Keyspace\r\n"
    "db0:keys=10,expires=2,avg_ttl=5000\r\n"
)


def _families_text(info: ParsedInfo, memo: FamilyMemo | None, change: InfoChange | None) -> str:
    families, skipped = info_families(
        info, db_indices=range(2), memo=memo, change=change, now=1.7e9
    )
    return f"{skipped}\n" + render_openmetrics(families).decode()


def _check_sequence(replies: list[str | bytes]) -> int:
    """Every reply through one parser and one memo gives what a fresh full parse gives, to
    the byte; returns how many replies took the patch."""
    parser = InfoParser()
    memo = FamilyMemo()
    patched = 0
    for reply in replies:
        info, change = parser.parse(reply)
        full = parse_info(reply)
        assert info == full
        if change is not None:
            patched += 1
            assert change.keys <= full.fields.keys()
        assert _families_text(info, memo, change) == _families_text(full, None, None)
    return patched


def test_successive_replies_of_a_real_server_are_patched_and_exact(redis: RedisServer) -> None:
    conn = client(redis)
    fill(conn, "user:", 300)
    resp = Client("127.0.0.1", redis.port)
    replies: list[str | bytes] = []
    rng = random.Random(3)
    try:
        for _ in range(25):
            for _ in range(rng.randint(0, 20)):
                conn.get(f"user:{rng.randint(0, 299)}")
                conn.set(f"user:{rng.randint(0, 299)}", "v")
            replies.append(resp.execute_command("INFO", *INFO_SECTIONS))
    finally:
        resp.close()
        conn.close()
    assert _check_sequence(replies) >= 20  # a new command or key shape now and then: in full


def test_a_line_that_appears_or_changes_its_key_is_parsed_in_full() -> None:
    parser = InfoParser()
    assert parser.parse(BASE)[1] is None
    info, change = parser.parse(BASE.replace("uptime_in_seconds:100", "uptime_in_seconds:101"))
    assert change is not None and change.keys == {"uptime_in_seconds"}
    assert info.fields["uptime_in_seconds"] == "101"
    moved = BASE.replace("blocked_clients:0", "tracking_clients:0")
    assert parser.parse(moved)[1] is None
    grown = moved.replace("evicted_keys:0\r\n", "evicted_keys:0\r\nexpired_keys:4\r\n")
    assert parser.parse(grown)[1] is None
    assert parser.parse(grown.replace("keyspace_hits:7", "keyspace_hits:8"))[1] is not None


def test_a_malformed_reply_is_parsed_in_full_each_time() -> None:
    parser = InfoParser()
    odd = BASE + "no colon here\r\n"
    assert parser.parse(odd)[1] is None
    assert parser.parse(odd.replace("uptime_in_seconds:100", "uptime_in_seconds:7"))[1] is None


def test_a_dict_reply_is_parsed_in_full() -> None:
    parser = InfoParser()
    parser.parse(BASE)
    info, change = parser.parse({"uptime_in_seconds": 5, "role": "master"})
    assert change is None and info.fields["uptime_in_seconds"] == "5"
    assert parser.parse(BASE)[1] is None


_LINES = BASE.split("\r\n")
_EDITS = st.sampled_from(
    ["value", "value", "value", "number", "key", "insert", "delete", "blank", "space", "dup",
     "nocolon", "comment", "long"]
)  # fmt: skip


def _edit(lines: list[str], kind: str, at: int, draw: str) -> list[str]:
    lines = list(lines)
    at %= len(lines)
    line = lines[at]
    key, sep, _ = line.partition(":")
    if kind in ("value", "number") and sep:
        lines[at] = f"{key}:{draw if kind == 'value' else len(draw) * 1.5}"
    elif kind == "key" and sep:
        lines[at] = f"{key}x:{line.partition(':')[2]}"
    elif kind == "insert":
        lines.insert(at, f"extra_{len(draw)}:{draw}")
    elif kind == "delete":
        del lines[at]
    elif kind == "blank":
        lines[at] = ""
    elif kind == "space":
        lines[at] = f" {line} "
    elif kind == "dup":
        lines.insert(at, lines[(at + 3) % len(lines)])
    elif kind == "nocolon":
        lines[at] = line.replace(":", "")
    elif kind == "comment":
        lines[at] = "# " + line
    elif kind == "long":
        lines[at] = f"{key}:{'9' * 5000}"
    return lines


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(_EDITS, st.integers(0, 200), st.text("0123456789.=,ab", max_size=8)),
            max_size=4,
        ),
        min_size=1,
        max_size=6,
    )
)
def test_any_sequence_of_edited_replies_gives_what_a_full_parse_gives(
    steps: list[list[tuple[str, int, str]]],
) -> None:
    replies: list[str | bytes] = [BASE]
    lines = _LINES
    for edits in steps:
        for kind, at, draw in edits:
            lines = _edit(lines, kind, at, draw)
        reply = "\r\n".join(lines)
        replies.append(reply.encode() if len(replies) % 2 else reply)
    _check_sequence(replies)


def _built(memo: FamilyMemo | None, fields: dict[str, str], change: InfoChange | None) -> str:
    """A table of two fields feeding one spec and one feeding another, then a labelled
    sample joining the first spec after the table (its rows must not change the memo's)."""
    builder = FamilyBuilder(memo)
    builder.table(fields, _TABLE, change)
    builder.add(_TABLE[0].spec, (), fields.get("late"))
    return f"{builder.skipped}\n" + render_openmetrics(builder.families()).decode()


_TABLE = (
    catalog.InfoField("a", catalog.REDIS_INFO_FIELDS[0].spec),
    catalog.InfoField("b", catalog.REDIS_INFO_FIELDS[1].spec),
    catalog.InfoField("c", catalog.REDIS_INFO_FIELDS[1].spec, 2.0),
)


def test_a_sample_joining_a_kept_row_leaves_the_memo_as_it_was() -> None:
    memo = FamilyMemo()
    first = {"a": "1", "b": "2", "c": "3", "late": "9"}
    assert _built(memo, first, None) == _built(None, first, None)
    for fields, keys in (
        ({"a": "1", "b": "2", "c": "4", "late": "8"}, {"c", "late"}),
        ({"a": "5", "b": "2", "c": "4", "late": "8"}, {"a"}),
        ({"a": "5", "b": "2", "c": "4", "late": "7"}, {"late"}),
    ):
        change = InfoChange(first, frozenset(keys))
        assert _built(memo, fields, change) == _built(None, fields, None)
        first = fields


def test_rows_made_again_from_the_last_segment_are_those_made_from_every_row() -> None:
    """Two fields feeding one spec, one of them turning into a non-number (skipped) and
    back, a field becoming a non-number alone (its family vanishes), and a sample joining a
    row in some polls only: each poll renders as a fresh build does."""
    polls = [
        {"a": "1", "b": "2", "c": "3"},
        {"a": "1", "b": "2", "c": "x"},
        {"a": "1", "b": "5", "c": "x"},
        {"a": "1", "b": "5", "c": "4", "late": "6"},
        {"a": "2", "b": "5", "c": "4"},
        {"a": "y", "b": "5", "c": "4"},
        {"a": "3", "b": "6", "c": "4", "late": "7"},
        {"a": "3", "b": "6", "c": "5"},
    ]
    memo = FamilyMemo()
    last: dict[str, str] | None = None
    for fields in polls:
        change = None
        if last is not None and last.keys() - {"late"} == fields.keys() - {"late"}:
            keys = {k for k in fields.keys() - {"late"} if fields[k] != last[k]}
            change = InfoChange(last, frozenset(keys))
        assert _built(memo, fields, change) == _built(None, fields, None), fields
        last = fields
