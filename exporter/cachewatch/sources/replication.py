"""Replication from INFO, with redis_exporter's labels: a replica's link to its master
(``master_host``/``master_port`` on every series, plus ``redis_slave_info``), and a master's
view of each connected replica (offset and lag per ``slave_ip``/``slave_port``/``slave_state``).

KeyDB's multi-master replicas list several masters (``master_1_host``...): each series takes
the master named last before it in INFO, as redis_exporter does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .. import catalog
from .infofields import FamilyBuilder, cut_label, parse_pairs, to_number

MAX_REPLICAS = 1_000
"""Connected replicas published; a master with more is hostile or broken."""

_MASTER_HOST = re.compile(r"master(_\d+)?_host")
_MASTER_PORT = re.compile(r"master(_\d+)?_port")
_LINK_STATUS = re.compile(r"master(_\d+)?_link_status")
_LAST_IO = re.compile(r"master(_\d+)?_last_io_seconds_ago")
_SYNC = re.compile(r"master(_\d+)?_sync_in_progress")
REPLICA_LINE = re.compile(r"slave\d{1,6}")


def _integer(raw: str) -> str:
    """redis_exporter reads these with Atoi: a value that is not an integer counts as 0."""
    value = to_number(raw)
    return str(int(value)) if value is not None and value.is_integer() else "0"


def add_replication(out: FamilyBuilder, fields: Mapping[str, str]) -> None:
    """The labelled replication series of one INFO reply (fields in INFO's order)."""
    host = port = ""
    replicas = 0
    for key, raw in fields.items():
        if not key.startswith(("master", "slave")):  # what every pattern below starts with
            continue
        if _MASTER_HOST.fullmatch(key):
            host = cut_label(raw)
        elif _MASTER_PORT.fullmatch(key):
            port = cut_label(raw)
        elif _LINK_STATUS.fullmatch(key):
            out.value(catalog.REDIS_MASTER_LINK_UP, (host, port), 1.0 if raw == "up" else 0.0)
        elif _LAST_IO.fullmatch(key):
            out.add(catalog.REDIS_MASTER_LAST_IO, (host, port), _integer(raw))
        elif _SYNC.fullmatch(key):
            out.add(catalog.REDIS_MASTER_SYNC_IN_PROGRESS, (host, port), _integer(raw))
        elif key == "slave_repl_offset":
            out.add(catalog.REDIS_SLAVE_REPL_OFFSET, (host, port), _integer(raw))
        elif REPLICA_LINE.fullmatch(key):
            replicas += 1
            if replicas > MAX_REPLICAS:
                out.skip()
                continue
            _replica(out, raw)
    if fields.get("role") == "slave":
        labels = (
            cut_label(fields.get("master_host", "")),
            cut_label(fields.get("master_port", "")),
            cut_label(fields.get("slave_read_only", "")),
        )
        out.value(catalog.REDIS_SLAVE_INFO, labels, 1.0)


def _replica(out: FamilyBuilder, raw: str) -> None:
    """``slave0:ip=10.0.0.2,port=6379,state=online,offset=1751844676,lag=0``"""
    pairs, bad = parse_pairs(raw)
    offset = to_number(pairs.get("offset", ""))
    if bad or offset is None:
        out.skip()
        return
    labels = tuple(cut_label(pairs.get(k, "")) for k in ("ip", "port", "state"))
    out.value(catalog.REDIS_CONNECTED_SLAVE_OFFSET, labels, offset)
    if "lag" in pairs:  # Redis before 3.0 has no lag
        out.add(catalog.REDIS_CONNECTED_SLAVE_LAG, labels, pairs["lag"])
