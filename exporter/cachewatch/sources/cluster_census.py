"""The key census over a whole Redis Cluster: one ``KeyCensus`` per master, each stepping
within its own budget (a cluster of N masters costs each master what one server costs), and
the logical caches summed over the masters. Once every master has completed a pass the sum
is exact, as on one server.

Masters are followed by node id: a master that joins gets a census of its own, one that
leaves (or is demoted by a failover) takes its census with it, and a promoted replica starts
a new one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ..config.redisurl import CachePrefix
from .census import CacheEstimate, CensusClient, CensusReport, KeyCensus
from .cluster import ClusterNode

log = logging.getLogger(__name__)


class ClusterCensus:
    """A census per master; ``report`` sums them."""

    def __init__(
        self,
        caches: Sequence[CachePrefix],
        *,
        keys_per_step: int,
        samples_per_step: int,
    ) -> None:
        self.caches = list(caches)
        self.keys_per_step = keys_per_step
        self.samples_per_step = samples_per_step
        self._by_master: dict[str, KeyCensus] = {}
        self._errors = 0
        self._lock = threading.Lock()

    @property
    def masters(self) -> int:
        with self._lock:
            return len(self._by_master)

    def follow(self, masters: Sequence[ClusterNode]) -> None:
        """Census exactly these masters (by node id)."""
        wanted = {node.node_id for node in masters}
        with self._lock:
            for node_id in set(self._by_master) - wanted:
                del self._by_master[node_id]
            for node_id in wanted - set(self._by_master):
                self._by_master[node_id] = KeyCensus(
                    self.caches,
                    keys_per_step=self.keys_per_step,
                    samples_per_step=self.samples_per_step,
                )

    def step(
        self, masters: Sequence[ClusterNode], calls: Callable[[ClusterNode], CensusClient]
    ) -> list[ClusterNode]:
        """One step on every master; a master that fails is counted and skipped (returned)."""
        self.follow(masters)
        failed = []
        for node in masters:
            with self._lock:
                census = self._by_master.get(node.node_id)
            if census is None:
                continue
            try:
                census.step(calls(node))
            except Exception as exc:  # noqa: BLE001 - one master down must not stop the rest
                census.failed()
                failed.append(node)
                log.debug("census step on %s failed: %s", node.address, type(exc).__name__)
        return failed

    def memory_allowed(self) -> bool:
        with self._lock:
            return all(c.memory_allowed for c in self._by_master.values())

    def report(self) -> CensusReport:
        """The caches summed over the masters; none until every master has counted."""
        with self._lock:
            reports = [census.report() for census in self._by_master.values()]
        return merge_reports(self.caches, reports)


def merge_reports(caches: Sequence[CachePrefix], reports: Sequence[CensusReport]) -> CensusReport:
    """Sum per-master census reports: sizes, memory and keys add up; coverage and the pass
    count are those of the master furthest behind (1 and N mean: exact everywhere)."""
    if not reports:
        return CensusReport((), 0.0, 0, 0, None, None, 0)
    estimates: tuple[CacheEstimate, ...] = ()
    if all(len(r.estimates) == len(caches) for r in reports):
        merged = []
        for index, cache in enumerate(caches):
            parts = [r.estimates[index] for r in reports]
            size = sum(p.size for p in parts)
            memories = [p.memory_bytes for p in parts]
            memory = None if any(m is None for m in memories) else sum(m or 0.0 for m in memories)
            sampled = sum(p.sampled_keys for p in parts)
            counted = sum(p.size * p.coverage for p in parts)
            merged.append(
                CacheEstimate(
                    cache.name,
                    size,
                    memory,
                    min(p.coverage for p in parts),
                    min(p.oldest for p in parts),
                    sampled,
                    min(1.0, sampled / counted) if counted else 0.0,
                )
            )
        estimates = tuple(merged)
    unmatched: Any = [r.unmatched for r in reports]
    durations = [r.last_pass_duration for r in reports]
    return CensusReport(
        estimates,
        sum(r.progress for r in reports) / len(reports),
        min(r.passes for r in reports),
        sum(r.keys_scanned for r in reports),
        None if any(u is None for u in unmatched) else sum(unmatched),
        None if any(d is None for d in durations) else max(d for d in durations if d is not None),
        sum(r.errors for r in reports),
    )
