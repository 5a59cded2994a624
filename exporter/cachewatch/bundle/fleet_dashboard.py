"""The Cache fleet dashboard: across every service, replica and cluster, the caches that
need a look first (worst hit ratio, most misses, most errors, most memory, firing alerts),
each row leading to that cache's detail dashboard."""

from __future__ import annotations

from typing import Any

from .. import catalog as c
from ..config.settings import BundleSettings
from . import promql as q
from .grafana import Panel, Scope, Target, dashboard

TOP = 10


def fleet_panels(config: BundleSettings, scope: Scope) -> list[Panel]:
    v = q.vocabulary(config)
    s, p = scope.service(), scope.process()
    service = ", ".join(scope.group_labels)
    idle = q.fmt_number(config.hit_ratio_min_request_rate)
    link = scope.detail_link("__data.fields.{}")
    row = f"{scope.legend} {{{{cache}}}}"
    firing = scope.service('alertstate="firing"', 'alertname=~"Cache.*"')

    def count(expr: str, title: str, description: str) -> Panel:
        return Panel(title, description, [Target(expr, title, instant=True)], kind="stat", width=6)

    def worst(title: str, description: str, expr: str, unit: str, legend: str = row) -> Panel:
        """A table of the worst caches, each row leading to the cache's detail."""
        described = f"{description} Click a row for the cache's detail."
        table = [Target(expr, legend, table=True)]
        return Panel(title, described, table, unit, kind="table", link=link)

    return [
        count(
            f"count(count by ({service}) ({v.REQUESTS}{s}))",
            "Services",
            "Services (distinct group labels) with instrumented caches.",
        ),
        count(
            f"count({v.REQUESTS}{s})",
            "Caches",
            "Caches across all services: one per service and cache name.",
        ),
        count(
            f"count(count by ({service}, instance) ({c.CACHE_GETS.name}{p}))",
            "Instances",
            "Processes (replicas) that publish cache metrics.",
        ),
        count(
            f"count(ALERTS{firing}) or vector(0)",
            "Firing cache alerts",
            "Cache alerts Prometheus fires now, over every service.",
        ),
        worst(
            "Worst hit ratio",
            f"The {TOP} caches with the lowest hit ratio over {v.window} among those serving at "
            f"least {idle} lookups/s (the hit-ratio alert's idle guard), over every replica of "
            "their service.",
            f"bottomk({TOP}, {v.HIT_RATIO}{s} and on ({v.SERVICE}) {v.REQUESTS}{s} >= {idle})",
            "percentunit",
        ),
        worst(
            "Most misses",
            f"The {TOP} caches with the most misses per second over {v.window}: where a "
            "better hit ratio saves the most backend work.",
            f"topk({TOP}, {v.REQUESTS}{s} - {v.HITS}{s})",
            "reqps",
        ),
        worst(
            "Highest error ratio",
            f"The {TOP} caches whose operations fail most often over {v.window} (only caches "
            "with errors).",
            f"topk({TOP}, {v.ERROR_RATIO}{s} > 0)",
            "percentunit",
        ),
        worst(
            "Most memory",
            f"The {TOP} caches holding the most memory in one process (memory is per replica).",
            f"topk({TOP}, max by ({v.PROCESS}) ({c.MEMORY.name}{p}))",
            "bytes",
            f"{scope.legend} {{{{instance}}}} {{{{cache}}}}",
        ),
        Panel(
            "Hit ratio of the worst caches",
            f"The hit ratio over time of the {TOP // 2} caches that are worst at each moment.",
            [Target(f"bottomk({TOP // 2}, {v.HIT_RATIO}{s})", row)],
            "percentunit",
            min=0,
            max=1,
            link=scope.detail_link("__field.labels.{}"),
        ),
        Panel(
            "Firing cache alerts by service",
            "Cache alerts firing now, per service, alert and severity.",
            [
                Target(
                    f"count by ({service}, alertname, severity) (ALERTS{firing})",
                    f"{scope.legend} {{{{alertname}}}} {{{{severity}}}}",
                    table=True,
                )
            ],
            "short",
            kind="table",
        ),
    ]


def fleet_dashboard(config: BundleSettings, scope: Scope, template: list[Any]) -> dict[str, Any]:
    return dashboard(
        "fleet",
        "Every service, replica and cluster at once: the caches to look at first.",
        fleet_panels(config, scope),
        template,
    )
