"""Health checks: each a named yes/no with detail, served on /health and as gauges."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from .. import catalog
from ..snapshot import FamilyCache
from ..sources.poller import Poller
from .definitions import CRITICAL

if TYPE_CHECKING:
    from .sampler import Sampler


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check; ``detail`` is shown as-is on /health (never secrets)."""

    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)


HealthCheck = Callable[[], dict[str, CheckResult]]
"""Returns one or more named results (one check may cover every source or every cache)."""


class HealthMonitor(Collector):
    """Runs every registered check; healthy when all pass."""

    def __init__(self, poller: Poller) -> None:
        self.poller = poller
        self._checks: list[HealthCheck] = [self._sources]
        self._lock = threading.Lock()
        self._families = FamilyCache()
        """The gauges of the last checks' states, kept while no check changes."""

    def add_check(self, check: HealthCheck) -> None:
        with self._lock:
            self._checks.append(check)

    def _sources(self) -> dict[str, CheckResult]:
        results = {}
        for snapshot in self.poller.latest():
            detail: dict[str, Any] = {
                "up": snapshot.up,
                "last_poll_timestamp": round(snapshot.timestamp, 3),
                "poll_duration_seconds": round(snapshot.duration_seconds, 6),
            }
            if snapshot.error:
                detail["error"] = snapshot.error
            results[f"source:{snapshot.source}"] = CheckResult(snapshot.up, detail)
        return results

    def readiness(self) -> tuple[bool, str]:
        """(ready, why) for /-/ready: every source has been polled and its last poll worked.

        Reads the last round only (a probe never polls a source), and names sources, never
        their errors: probes answer without authentication.
        """
        latest = {snapshot.source: snapshot for snapshot in self.poller.latest()}
        waiting = [s.name for s in self.poller.sources if s.name not in latest]
        down = sorted(name for name, snapshot in latest.items() if not snapshot.up)
        problems = []
        if waiting:
            problems.append(f"not polled yet: {', '.join(waiting)}")
        if down:
            problems.append(f"last poll failed: {', '.join(down)}")
        return not problems, "; ".join(problems)

    def evaluate(self) -> dict[str, CheckResult]:
        if not self.poller.latest():
            self.poller.poll()
        with self._lock:
            checks = list(self._checks)
        results: dict[str, CheckResult] = {}
        for check in checks:
            results.update(check())
        return results

    def report(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, JSON body) for /health."""
        results = self.evaluate()
        healthy = all(result.ok for result in results.values())
        body = {
            "status": "healthy" if healthy else "unhealthy",
            "checks": {
                name: {"ok": result.ok, **result.detail} for name, result in sorted(results.items())
            },
        }
        return healthy, body

    def collect(self) -> Iterator[Metric]:
        states = tuple((name, result.ok) for name, result in sorted(self.evaluate().items()))
        return iter(self._families.get(states, lambda: _health_families(states)))


def _health_families(states: tuple[tuple[str, bool], ...]) -> Iterator[Metric]:
    family = catalog.HEALTH_CHECK_OK.family()
    for name, ok in states:
        family.add_metric([name], 1 if ok else 0)
    yield family


def analysis_checks(
    sampler: Sampler, *, fail_on_critical: bool = False, available_min_ratio: float = 0.05
) -> HealthCheck:
    """The analysis's checks: sampler freshness, each cache's alert state, and memory.

    A cache's check shows its alert state; it fails only when the cache is critical and
    ``fail_on_critical`` is on (a low hit ratio must not restart a pod whose probe reads
    /health, so failing is opt-in); the
    memory check fails when the host has less than ``available_min_ratio`` of it available.
    """

    def check() -> dict[str, CheckResult]:
        results: dict[str, CheckResult] = {}
        fresh, age = sampler.freshness()
        results["sampler"] = CheckResult(
            fresh,
            {
                "last_sample_age_seconds": None if age is None else round(age, 3),
                "sample_interval_seconds": sampler.interval,
                "samples": sampler.samples,
            },
        )
        for name in sorted(sampler.signals()):
            status, reasons = sampler.evaluator.cache_status(name)
            results[f"cache:{name}"] = CheckResult(
                status != CRITICAL or not fail_on_critical,
                {"state": status, "reasons": reasons},
            )
        usage = sampler.memory()
        if usage is not None:
            available = usage.host_available_ratio
            results["memory"] = CheckResult(
                available is None or available >= available_min_ratio,
                {
                    "process_rss_bytes": usage.process_rss_bytes,
                    "host_total_bytes": usage.host_total_bytes,
                    "host_available_bytes": usage.host_available_bytes,
                    "cache_bytes": usage.cache_bytes,
                    "in_process_cache_share": _rounded(usage.process_share),
                    "host_cache_share": _rounded(usage.host_share),
                },
            )
        return results

    return check


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
