"""Attaching the analysis to an exporter: sampler thread, gauges, health checks, JSON routes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..sources.local import LocalSource
from .health import analysis_checks
from .sampler import Clock, Sampler, TrendCollector

if TYPE_CHECKING:
    from ..app import Exporter

HISTORY_LIMIT = 500


class Analysis:
    """Everything the analysis adds to one exporter; ``exporter.close()`` stops it."""

    def __init__(self, exporter: Exporter, config: Config, *, clock: Clock | None = None) -> None:
        self.exporter = exporter
        self.config = config
        in_process = [s.name for s in exporter.hub.sources if isinstance(s, LocalSource)]
        kwargs: dict[str, Any] = {"in_process_sources": in_process}
        if clock is not None:
            kwargs["clock"] = clock
        self.sampler = Sampler(exporter.hub, config, **kwargs)
        self.evaluator = self.sampler.evaluator
        exporter.registry.register(TrendCollector(self.sampler))
        exporter.registry.register(self.evaluator)
        exporter.health.add_check(
            analysis_checks(self.sampler, fail_on_critical=config.health_fail_on_critical)
        )
        exporter.add_route("/alerts", "alert states and recent transitions", self._alerts)
        exporter.add_route("/report", "per-cache report with recommendations", self._report)
        exporter.on_close(self.sampler.stop)
        exporter.analysis = self

    def start(self) -> Analysis:
        self.sampler.start()
        return self

    def _alerts(self, query: Mapping[str, str]) -> tuple[int, Any]:
        try:
            limit = int(query.get("limit", "100"))
        except ValueError:
            return 400, {"error": "limit must be an integer"}
        return 200, self.evaluator.as_json(max(1, min(limit, HISTORY_LIMIT)))

    def _report(self, _query: Mapping[str, str]) -> tuple[int, Any]:
        from .advice import build_report

        return 200, build_report(self.sampler, self.config)


def attach_analysis(
    exporter: Exporter, config: Config, *, clock: Clock | None = None, start: bool = True
) -> Analysis:
    """Add trends, alert states, health checks, /alerts and /report to ``exporter``."""
    analysis = Analysis(exporter, config, clock=clock)
    return analysis.start() if start else analysis
