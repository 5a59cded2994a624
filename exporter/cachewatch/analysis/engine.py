"""The analysis of one running process: the sampler (trends and alert states), its gauges,
its health checks, and the JSON of /alerts and /report. The exporter wires it in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client.registry import Collector

from ..config.settings import AnalysisSettings
from ..sources.poller import Poller
from .health import HealthCheck, analysis_checks
from .sampler import Clock, Sampler, TrendCollector

HISTORY_LIMIT = 500


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
        return [TrendCollector(self.sampler), self.evaluator]

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
