"""The analysis of one running process: the sampler (trends and alert states), its gauges,
its health checks, and the JSON of /alerts and /report. The exporter wires it in.

Alert settings change while it runs: ``configure_alert_threshold`` (one threshold, from the
application) and ``reconfigure`` (a reloaded configuration). The alert states, their gauges,
``cachewatch_alert_threshold`` and /alerts follow at once; the windows and the sampling
interval shape the sampled history, so they change only with a restart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client.registry import Collector

from ..config.settings import AnalysisSettings
from ..sources.poller import Poller
from .definitions import WARNING
from .health import HealthCheck, analysis_checks
from .sampler import Clock, Sampler, TrendCollector
from .statistics import StatisticsCollector
from .thresholds import ThresholdCollector

HISTORY_LIMIT = 500
RESTART_ONLY = ("sample_interval", "trend_window", "alert_rate_window", "health_fail_on_critical")
"""Analysis settings a reload cannot change in a running process (it says so in the log)."""


class Analysis:
    """Trends, alert states, health checks and the report over one poller's sources."""

    def __init__(
        self,
        poller: Poller,
        settings: AnalysisSettings,
        *,
        in_process_sources: Iterable[str] = ("local",),
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        kwargs: dict[str, Any] = {"in_process_sources": in_process_sources}
        if clock is not None:
            kwargs["clock"] = clock
        self.sampler = Sampler(poller, settings, **kwargs)
        self.evaluator = self.sampler.evaluator

    def collectors(self) -> list[Collector]:
        """What the analysis publishes on /metrics: trend gauges, alert states."""
        return [
            TrendCollector(self.sampler),
            self.evaluator,
            ThresholdCollector(self.sampler.rules),
            StatisticsCollector(self.evaluator.statistics),
        ]

    def configure_alert_threshold(
        self,
        alert: str,
        threshold: float | None,
        *,
        severity: str = WARNING,
        cache: str | None = None,
        escalation: bool | None = None,
    ) -> None:
        """Change one threshold (and whether the alert escalates) while running; raises
        ValueError, changing nothing, when the alert, severity or value is wrong."""
        self.sampler.rules.configure(
            alert, threshold, severity=severity, cache=cache, escalation=escalation
        )
        self.sampler.reevaluate()

    def reconfigure(self, settings: AnalysisSettings) -> list[str]:
        """Apply reloaded settings: the alert settings at once (ConfigError, changing
        nothing, when they are inconsistent); returns the names of the settings that
        changed but need a restart."""
        running = self.settings
        pending = [n for n in RESTART_ONLY if getattr(settings, n) != getattr(running, n)]
        kept = dataclasses.replace(settings, **{n: getattr(running, n) for n in RESTART_ONLY})
        self.sampler.rules.apply(kept)
        self.settings = self.sampler.config = kept
        self.sampler.reevaluate()
        return pending

    def health_check(self) -> HealthCheck:
        return analysis_checks(self.sampler, fail_on_critical=self.settings.health_fail_on_critical)

    def start(self) -> Analysis:
        self.sampler.start()
        return self

    def stop(self) -> None:
        self.sampler.stop()

    def alerts(self, query: Mapping[str, str]) -> tuple[int, Any]:
        """/alerts: states and the last ``?limit=`` transitions."""
        try:
            limit = int(query.get("limit", "100"))
        except ValueError:
            return 400, {"error": "limit must be an integer"}
        return 200, self.evaluator.as_json(max(1, min(limit, HISTORY_LIMIT)))

    def report(self, _query: Mapping[str, str]) -> tuple[int, Any]:
        """/report: per-cache statistics, trends, alert states and advice."""
        from .advice import build_report

        return 200, build_report(self.sampler, self.settings)
