"""Pure parsing of Redis INFO into metric families under redis_exporter's names.

No I/O here: the Redis source hands in the INFO reply (raw text, or the dict redis-py makes
of it) and gets families back. Whatever cannot be parsed (a line without ``:``, a number
that is not one, an unexpected shape) is skipped and counted, never raised: a Redis-compatible
server with extra or odd fields must not break a scrape.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

from .. import catalog

MAX_LINES = 20_000
"""INFO replies are a few hundred lines; anything beyond this is skipped and counted."""
MAX_VALUE_LENGTH = 4_096
MAX_LABEL_LENGTH = 256
MAX_COMMANDS = 1_000
MAX_DATABASES = 256
"""Redis has 16 databases by default; a keyspace section listing more is hostile or broken."""
"""Most ``cmd`` label values (Redis has ~240 commands and subcommands); bounds cardinality."""
MAX_ERROR_KINDS = 128

_DB = re.compile(r"db(\d{1,6})")
_STATUS = {"ok": 1.0, "up": 1.0, "yes": 1.0, "err": 0.0, "down": 0.0, "no": 0.0, "fail": 0.0}
_IGNORED_PREFIXES = ("latency_percentiles_usec_",)
"""Known fields that are deliberately not published (not counted as unparsable)."""

_BY_FIELD: dict[str, list[catalog.InfoField]] = {}
for _info in catalog.REDIS_INFO_FIELDS:
    _BY_FIELD.setdefault(_info.field, []).append(_info)
_TABLE = [(i.field, i.spec, i.spec.sample_name, i.scale) for i in catalog.REDIS_INFO_FIELDS]

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
    pairs: dict[str, str] = {}
    for piece in text.split(","):
        key, sep, value = piece.partition("=")
        if not sep or not key:
            info.skipped += 1
            continue
        pairs[key.strip()] = value.strip()
    return pairs


def _add(info: ParsedInfo, key: str, value: Any) -> None:
    """File one INFO field where it belongs; ``value`` is a string or (from redis-py) a dict."""
    if key.startswith(_IGNORED_PREFIXES):
        return
    if isinstance(value, Mapping):
        pairs = {str(k): str(v) for k, v in value.items()}
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
    fields = info.fields
    lines = reply.split("\n")
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
        elif key[0] in "ced" and key.startswith(("cmdstat_", "errorstat_", "db")):
            _add(info, key, value)
        elif key.startswith(_IGNORED_PREFIXES):
            continue
        elif len(value) > MAX_VALUE_LENGTH:
            info.skipped += 1
        else:
            fields[key] = value
    return info


def to_number(raw: str) -> float | None:
    """A finite number from an INFO value (``ok``/``err`` style statuses as 1/0), else None."""
    if len(raw) > 64:
        return None
    try:
        value = float(raw)  # float() ignores surrounding whitespace itself
    except ValueError:
        return _STATUS.get(raw.strip().lower())
    return value if math.isfinite(value) else None


def _label(value: str) -> str:
    return value[:MAX_LABEL_LENGTH]


_PROTOTYPES: dict[str, Metric] = {}


def _fresh(spec: catalog.MetricSpec) -> Any:
    """An empty family for ``spec``: a copy of a prototype, skipping the name checks that
    make building ~150 families on every scrape cost more than parsing INFO."""
    prototype = _PROTOTYPES.get(spec.name)
    if prototype is None:
        prototype = _PROTOTYPES[spec.name] = spec.family()
    family = object.__new__(type(prototype))
    family.__dict__.update(prototype.__dict__)
    family.samples = []
    return family


class _Families:
    """Families built lazily, in first-use order, each counted once."""

    def __init__(self) -> None:
        self.by_name: dict[str, Any] = {}
        self.skipped = 0

    def get(self, spec: catalog.MetricSpec) -> Any:
        family = self.by_name.get(spec.name)
        if family is None:
            family = self.by_name[spec.name] = _fresh(spec)
        return family

    def add(
        self, spec: catalog.MetricSpec, labels: list[str], raw: str | None, scale: float = 1.0
    ) -> None:
        if raw is None:
            return
        value = to_number(raw)
        if value is None:
            self.skipped += 1
            return
        family = self.by_name.get(spec.name)
        if family is None:
            family = self.by_name[spec.name] = _fresh(spec)
        # What add_metric appends, without its per-call bookkeeping.
        names = dict(zip(spec.labels, labels, strict=True)) if labels else {}
        family.samples.append(Sample(spec.sample_name, names, value * scale, None, None))


def info_families(
    info: ParsedInfo,
    *,
    config_maxmemory: float | None = None,
    db_indices: Iterable[int] = (),
    now: float | None = None,
) -> tuple[list[Metric], int]:
    """The redis_* families for one INFO reply, and how many values were skipped.

    ``db_indices`` are databases to publish with zero keys when INFO's keyspace omits them
    (it lists only non-empty ones), as redis_exporter does for every configured database.
    """
    out = _Families()
    fields = info.fields
    by_name = out.by_name
    for field_name, spec, sample_name, scale in _TABLE:  # the hot loop, kept flat
        raw = fields.get(field_name)
        if raw is None:
            continue
        value = to_number(raw)
        if value is None:
            out.skipped += 1
            continue
        family = by_name.get(spec.name)
        if family is None:
            family = by_name[spec.name] = _fresh(spec)
        family.samples.append(Sample(sample_name, {}, value * scale, None, None))

    if "maxmemory" not in fields and config_maxmemory is not None:
        out.get(_BY_FIELD["maxmemory"][0].spec).add_metric([], config_maxmemory)
    if config_maxmemory is not None:
        out.get(catalog.REDIS_CONFIG_MAXMEMORY).add_metric([], config_maxmemory)

    if "redis_version" in fields:
        labels = [_label(fields.get(source, "")) for source in INSTANCE_LABELS.values()]
        out.get(catalog.REDIS_INSTANCE_INFO).add_metric(labels, 1)

    uptime = to_number(fields.get("uptime_in_seconds", ""))
    if uptime is not None:
        server_usec = to_number(fields.get("server_time_usec", ""))
        clock = server_usec / 1e6 if server_usec is not None else (now or time.time())
        out.get(catalog.REDIS_START_TIME).add_metric([], clock - uptime)

    dbs = dict.fromkeys(sorted({*info.keyspace, *db_indices}))
    for count, index in enumerate(dbs):
        if count >= MAX_DATABASES:
            out.skipped += 1
            continue
        pairs = info.keyspace.get(index, {"keys": "0", "expires": "0", "avg_ttl": "0"})
        db = [f"db{index}"]
        out.add(catalog.REDIS_DB_KEYS, db, pairs.get("keys"))
        out.add(catalog.REDIS_DB_KEYS_EXPIRING, db, pairs.get("expires"))
        if index in info.keyspace:  # like redis_exporter: no average TTL of an empty DB
            out.add(catalog.REDIS_DB_AVG_TTL, db, pairs.get("avg_ttl"), 0.001)

    for count, (command, stats) in enumerate(sorted(info.commands.items())):
        if count >= MAX_COMMANDS:
            out.skipped += 1
            continue
        cmd = [_label(command)]
        out.add(catalog.REDIS_COMMANDS, cmd, stats.get("calls"))
        out.add(catalog.REDIS_COMMANDS_DURATION, cmd, stats.get("usec"), 1e-6)
        out.add(catalog.REDIS_COMMANDS_REJECTED, cmd, stats.get("rejected_calls"))
        out.add(catalog.REDIS_COMMANDS_FAILED, cmd, stats.get("failed_calls"))

    for count, (error, stats) in enumerate(sorted(info.errors.items())):
        if count >= MAX_ERROR_KINDS:
            out.skipped += 1
            continue
        out.add(catalog.REDIS_ERRORS, [_label(error)], stats.get("count"))

    return list(out.by_name.values()), out.skipped + info.skipped
