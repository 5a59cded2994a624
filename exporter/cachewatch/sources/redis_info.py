"""Pure parsing of Redis INFO into metric families under redis_exporter's names.

No I/O here: the Redis source hands in the INFO reply (raw text, or the dict redis-py makes
of it) and gets families back. Whatever cannot be parsed (a line without ``:``, a number
that is not one, an unexpected shape) is skipped and counted, never raised: a Redis-compatible
server with extra or odd fields must not break a scrape.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.metrics_core import Metric

from .. import catalog
from .cluster import add_cluster_info
from .infofields import (
    FamilyBuilder,
    FamilyMemo,
    InfoChange,
    cut_label,
    parse_pairs,
    to_number,
)
from .replication import REPLICA_LINE, add_replication
from .sentinel import SENTINEL_MASTER_LINE, add_sentinel_info

__all__ = ["ParsedInfo", "info_families", "parse_info", "parse_lines", "to_number"]

MAX_LINES = 20_000
"""INFO replies are a few hundred lines; anything beyond this is skipped and counted."""
MAX_VALUE_LENGTH = 4_096
MAX_COMMANDS = 1_000
"""Most ``cmd`` label values (Redis has ~240 commands and subcommands); bounds cardinality."""
MAX_DATABASES = 256
"""Redis has 16 databases by default; a keyspace section listing more is hostile or broken."""
MAX_ERROR_KINDS = 128

_DB = re.compile(r"db(\d{1,6})")
_IGNORED_PREFIXES = ("latency_percentiles_usec_",)
"""Known fields that are deliberately not published (not counted as unparsable)."""
_KEYED_OR_IGNORED = ("cmdstat_", "errorstat_", "db", *_IGNORED_PREFIXES)
"""The keyed sections' fields (commands, errors, databases) and the ignored ones."""

_BY_FIELD: dict[str, list[catalog.InfoField]] = {}
for _info in catalog.REDIS_INFO_FIELDS:
    _BY_FIELD.setdefault(_info.field, []).append(_info)

INSTANCE_LABELS: dict[str, str] = {
    "role": "role",
    "redis_version": "redis_version",
    "redis_build_id": "redis_build_id",
    "redis_mode": "redis_mode",
    "os": "os",
    "maxmemory_policy": "maxmemory_policy",
    "tcp_port": "tcp_port",
    "run_id": "run_id",
    "process_id": "process_id",
    "master_replid": "master_replid",
}
"""redis_instance_info's label -> the INFO field it comes from."""


@dataclass
class ParsedInfo:
    """INFO split into plain fields and the keyed sections (keyspace, commands, errors)."""

    fields: dict[str, str] = field(default_factory=dict)
    keyspace: dict[int, dict[str, str]] = field(default_factory=dict)
    commands: dict[str, dict[str, str]] = field(default_factory=dict)
    errors: dict[str, dict[str, str]] = field(default_factory=dict)
    skipped: int = 0


def _parse_pairs(text: str, info: ParsedInfo) -> dict[str, str]:
    """``calls=2,usec=20,...`` -> {"calls": "2", "usec": "20"}; malformed pieces are counted."""
    pairs, bad = parse_pairs(text)
    info.skipped += bad
    return pairs


def _add(info: ParsedInfo, key: str, value: Any) -> None:
    """File one INFO field where it belongs; ``value`` is a string or (from redis-py) a dict."""
    if key.startswith(_IGNORED_PREFIXES):
        return
    if isinstance(value, Mapping):
        pairs = {str(k): str(v) for k, v in value.items()}
        if REPLICA_LINE.fullmatch(key) or SENTINEL_MASTER_LINE.fullmatch(key):
            info.fields[key] = ",".join(f"{k}={v}" for k, v in pairs.items())
            return
    elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
        text = str(value)
        if len(text) > MAX_VALUE_LENGTH:
            info.skipped += 1
            return
        pairs = {}
        if key.startswith(("cmdstat_", "errorstat_")) or _DB.fullmatch(key):
            pairs = _parse_pairs(text, info)
        else:
            info.fields[key] = text
            return
    else:
        info.skipped += 1
        return
    db = _DB.fullmatch(key)
    if db:
        info.keyspace[int(db.group(1))] = pairs
    elif key.startswith("cmdstat_") and len(key) > len("cmdstat_"):
        info.commands[key[len("cmdstat_") :]] = pairs
    elif key.startswith("errorstat_") and len(key) > len("errorstat_"):
        info.errors[key[len("errorstat_") :]] = pairs
    else:
        info.skipped += 1


def parse_info(reply: str | bytes | Mapping[str, Any]) -> ParsedInfo:
    """Parse an INFO reply: the raw text (``INFO ALL``) or redis-py's dict of it."""
    info = ParsedInfo()
    if isinstance(reply, Mapping):
        for key, value in reply.items():
            _add(info, str(key), value)
        return info
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", errors="replace")
    return parse_lines(reply.split("\n"))


def parse_lines(lines: list[str]) -> ParsedInfo:
    """Parse the lines of an INFO reply (its text split at ``\n``, as ``parse_info`` does)."""
    info = ParsedInfo()
    fields = info.fields
    if len(lines) > MAX_LINES:
        info.skipped += len(lines) - MAX_LINES
        lines = lines[:MAX_LINES]
    for raw_line in lines:
        line = raw_line.strip()
        if not line or line[0] == "#":
            continue
        key, sep, value = line.partition(":")
        if not sep or not key:
            info.skipped += 1
        elif key[0] in "cedl" and key.startswith(_KEYED_OR_IGNORED):  # few keys start so
            if not key.startswith(_IGNORED_PREFIXES):
                _add(info, key, value)
        elif len(value) > MAX_VALUE_LENGTH:
            info.skipped += 1
        else:
            fields[key] = value
    return info


def info_families(
    info: ParsedInfo,
    *,
    config_maxmemory: float | None = None,
    config_io_threads: float | None = None,
    db_indices: Iterable[int] = (),
    cluster_info: ParsedInfo | None = None,
    now: float | None = None,
    memo: FamilyMemo | None = None,
    change: InfoChange | None = None,
) -> tuple[list[Metric], int]:
    """The redis_* families for one INFO reply (and the node's CLUSTER INFO, when it is a
    cluster node), and how many values were skipped.

    ``db_indices`` are databases to publish with zero keys when INFO's keyspace omits them
    (it lists only non-empty ones), as redis_exporter does for every configured database.
    With a ``memo`` (one per server), the families whose values did not change since the last
    call are handed out again, frozen (see ``FamilyMemo``); with ``change`` too (how ``info``
    differs from the last call's, from ``info_delta.InfoParser``), only the changed fields'
    rows of the INFO table are made again.
    """
    out = FamilyBuilder(memo)
    fields = info.fields
    out.table(fields, catalog.REDIS_INFO_FIELDS, change)

    if "maxmemory" not in fields and config_maxmemory is not None:
        out.value(_BY_FIELD["maxmemory"][0].spec, (), config_maxmemory)
    if config_maxmemory is not None:
        out.value(catalog.REDIS_CONFIG_MAXMEMORY, (), config_maxmemory)
    if config_io_threads is not None:
        out.value(catalog.REDIS_CONFIG_IO_THREADS, (), config_io_threads)

    if "redis_version" in fields:
        _instance_info(out, fields)

    uptime = to_number(fields.get("uptime_in_seconds", ""))
    if uptime is not None:
        server_usec = to_number(fields.get("server_time_usec", ""))
        clock = server_usec / 1e6 if server_usec is not None else (now or time.time())
        out.value(catalog.REDIS_START_TIME, (), clock - uptime)

    add_replication(out, fields)
    if "sentinel_masters" in fields:
        add_sentinel_info(out, fields)
    if cluster_info is not None:
        add_cluster_info(out, cluster_info.fields)

    dbs = dict.fromkeys(sorted({*info.keyspace, *db_indices}))
    for count, index in enumerate(dbs):
        if count >= MAX_DATABASES:
            out.skip()
            continue
        pairs = info.keyspace.get(index, {"keys": "0", "expires": "0", "avg_ttl": "0"})
        db = [f"db{index}"]
        out.add(catalog.REDIS_DB_KEYS, db, pairs.get("keys"))
        out.add(catalog.REDIS_DB_KEYS_EXPIRING, db, pairs.get("expires"))
        out.add(catalog.REDIS_DB_KEYS_CACHED, db, pairs.get("cached_keys"))
        if index in info.keyspace:  # like redis_exporter: no average TTL of an empty DB
            out.add(catalog.REDIS_DB_AVG_TTL, db, pairs.get("avg_ttl"), 0.001)

    for count, (command, stats) in enumerate(sorted(info.commands.items())):
        if count >= MAX_COMMANDS:
            out.skip()
            continue
        cmd = [cut_label(command)]
        out.add(catalog.REDIS_COMMANDS, cmd, stats.get("calls"))
        out.add(catalog.REDIS_COMMANDS_DURATION, cmd, stats.get("usec"), 1e-6)
        out.add(catalog.REDIS_COMMANDS_REJECTED, cmd, stats.get("rejected_calls"))
        out.add(catalog.REDIS_COMMANDS_FAILED, cmd, stats.get("failed_calls"))

    for count, (error, stats) in enumerate(sorted(info.errors.items())):
        if count >= MAX_ERROR_KINDS:
            out.skip()
            continue
        out.add(catalog.REDIS_ERRORS, [cut_label(error)], stats.get("count"))

    families = out.families()
    skipped = out.skipped + info.skipped + (cluster_info.skipped if cluster_info else 0)
    return families, skipped


def _instance_info(out: FamilyBuilder, fields: Mapping[str, str]) -> None:
    """redis_instance_info; on Valkey with its two version labels, as redis_exporter. Valkey 8+
    says ``server_mode`` where Redis says ``redis_mode``: either fills the ``redis_mode``
    label."""
    values = {label: fields.get(source, "") for label, source in INSTANCE_LABELS.items()}
    if not values["redis_mode"]:
        values["redis_mode"] = fields.get("server_mode", "")
    spec = catalog.REDIS_INSTANCE_INFO
    extra = [label for label in catalog.REDIS_INSTANCE_INFO_VALKEY_LABELS if label in fields]
    if extra:
        spec = dataclasses.replace(spec, labels=(*spec.labels, *extra))
        values.update({label: fields[label] for label in extra})
    out.value(spec, [cut_label(values[label]) for label in spec.labels], 1.0)
