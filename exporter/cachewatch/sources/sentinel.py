"""A Sentinel as a scrape target, under redis_exporter's names: INFO's Sentinel section
(``redis_sentinel_masters``, ``redis_sentinel_tilt``..., and per master its status, replicas
and Sentinels), plus what redis_exporter derives from the SENTINEL commands for each master
(``CKQUORUM``, the master's settings and epoch, the Sentinels and replicas that are not down).

The commands cost the Sentinel one pipelined round trip per scrape (``SENTINEL MASTERS``
travels with INFO); the data servers are not touched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import catalog
from .infofields import FamilyBuilder, cut_label, parse_pairs, to_number

MAX_MASTERS = 256
"""Masters one Sentinel's metrics cover; beyond it they are skipped and counted."""
SENTINEL_MASTER_LINE = re.compile(r"master\d{1,6}")


def text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def reply_map(reply: Any) -> dict[str, str]:
    """A RESP2 flat ``[key, value, ...]`` list (or a RESP3 map) as a dict of strings."""
    if isinstance(reply, Mapping):
        return {text(k): text(v) for k, v in reply.items()}
    if isinstance(reply, (list, tuple)):
        return {text(k): text(v) for k, v in zip(reply[::2], reply[1::2], strict=False)}
    return {}


def add_sentinel_info(out: FamilyBuilder, fields: Mapping[str, str]) -> None:
    """INFO's Sentinel section: the counters and one ``masterN:`` line per master."""
    out.table(fields, catalog.REDIS_SENTINEL_INFO_FIELDS)
    masters = 0
    for key, raw in fields.items():
        if key[:1] != "m" or not SENTINEL_MASTER_LINE.fullmatch(key):
            continue
        masters += 1
        if masters > MAX_MASTERS:
            out.skip()
            continue
        # master0:name=mymaster,status=ok,address=127.0.0.1:6379,slaves=1,sentinels=3
        pairs, _ = parse_pairs(raw)
        name, status = cut_label(pairs.get("name", "")), cut_label(pairs.get("status", ""))
        address = cut_label(pairs.get("address", ""))
        replicas, sentinels = (
            to_number(pairs.get("slaves", "")),
            to_number(pairs.get("sentinels", "")),
        )
        if replicas is None or sentinels is None:
            out.skip()
            continue
        status_value = 1.0 if status == "ok" else 0.0
        out.value(catalog.REDIS_SENTINEL_MASTER_STATUS, (name, address, status), status_value)
        out.value(catalog.REDIS_SENTINEL_MASTER_SLAVES, (name, address), replicas)
        out.value(catalog.REDIS_SENTINEL_MASTER_SENTINELS, (name, address), sentinels)


@dataclass(frozen=True)
class MasterDetails:
    """What ``SENTINEL CKQUORUM``, ``SENTINELS`` and ``REPLICAS`` said of one master."""

    master: dict[str, str]
    quorum_ok: bool
    quorum_message: str
    sentinels: Sequence[dict[str, str]]
    replicas: Sequence[dict[str, str]]


def _not_down(peer: Mapping[str, str]) -> bool:
    flags = peer.get("flags")
    return flags is not None and "s_down" not in flags and "o_down" not in flags


def add_sentinel_masters(out: FamilyBuilder, details: Sequence[MasterDetails]) -> None:
    """The per-master series redis_exporter derives from the SENTINEL commands."""
    for entry in details[:MAX_MASTERS]:
        master = entry.master
        name = cut_label(master["name"])
        address = cut_label(f"{master['ip']}:{master['port']}")
        labels = (name, address)
        out.value(
            catalog.REDIS_SENTINEL_MASTER_CKQUORUM,
            (name, cut_label(entry.quorum_message)),
            1.0 if entry.quorum_ok else 0.0,
        )
        settings = (
            (catalog.REDIS_SENTINEL_MASTER_QUORUM, "quorum", 1.0),
            (catalog.REDIS_SENTINEL_MASTER_FAILOVER_TIMEOUT, "failover-timeout", 1.0),
            (catalog.REDIS_SENTINEL_MASTER_PARALLEL_SYNCS, "parallel-syncs", 1.0),
            (catalog.REDIS_SENTINEL_MASTER_DOWN_AFTER, "down-after-milliseconds", 0.001),
            (catalog.REDIS_SENTINEL_MASTER_CONFIG_EPOCH, "config-epoch", 1.0),
            (catalog.REDIS_SENTINEL_MASTER_LAST_OK_PING, "last-ok-ping-reply", 0.001),
        )
        for spec, key, scale in settings:
            out.add(spec, labels, master.get(key), scale)
        ok_sentinels = 1 + sum(1 for peer in entry.sentinels if _not_down(peer))  # 1: itself
        out.value(catalog.REDIS_SENTINEL_MASTER_OK_SENTINELS, labels, ok_sentinels)
        ok_replicas = sum(1 for replica in entry.replicas if _not_down(replica))
        out.value(catalog.REDIS_SENTINEL_MASTER_OK_SLAVES, labels, ok_replicas)
    if len(details) > MAX_MASTERS:
        out.skip(len(details) - MAX_MASTERS)


def masters_of(reply: Any) -> list[dict[str, str]]:
    """The masters of a ``SENTINEL MASTERS`` reply that have a name and an address."""
    masters = [reply_map(entry) for entry in reply] if isinstance(reply, (list, tuple)) else []
    return [m for m in masters if m.get("name") and m.get("ip") and m.get("port")]


def fetch_master_details(client: Any, masters: Sequence[dict[str, str]]) -> list[MasterDetails]:
    """CKQUORUM, SENTINELS and REPLICAS of every master, in one pipelined round trip."""
    masters = list(masters[:MAX_MASTERS])
    if not masters:
        return []
    pipe = client.pipeline(transaction=False)
    for master in masters:
        pipe.execute_command("SENTINEL", "CKQUORUM", master["name"])
        pipe.execute_command("SENTINEL", "SENTINELS", master["name"])
        pipe.execute_command("SENTINEL", "REPLICAS", master["name"])
    replies = pipe.execute(raise_on_error=False)
    details = []
    for index, master in enumerate(masters):
        quorum, sentinels, replicas = replies[3 * index : 3 * index + 3]
        quorum_ok = not isinstance(quorum, Exception)
        details.append(
            MasterDetails(
                master=master,
                quorum_ok=quorum_ok,
                quorum_message=text(quorum),
                sentinels=_peers(sentinels),
                replicas=_peers(replicas),
            )
        )
    return details


def _peers(reply: Any) -> list[dict[str, str]]:
    if isinstance(reply, Exception) or not isinstance(reply, (list, tuple)):
        return []
    return [reply_map(entry) for entry in reply]
