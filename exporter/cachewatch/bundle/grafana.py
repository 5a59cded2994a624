"""What a dashboard is made of, built with grafana-foundation-sdk: panels, their queries, the
template variables of a fleet, and the links between the dashboards.

Every dashboard has a variable per group label (``bundle.group-labels``) and for
``instance``, multi-select with "All" (``.*``, so series without the label match too); every
query is filtered by the variables that apply to its series: the group labels and ``cache``
always, ``instance`` wherever the series still has it (recording rules are per service).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as pb
from grafana_foundation_sdk.builders import stat as sb
from grafana_foundation_sdk.builders import table as tab
from grafana_foundation_sdk.builders import timeseries as tb
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

from .rules import DASHBOARD_UIDS

PROMETHEUS = dm.DataSourceRef(type_val="prometheus", uid="prometheus")
RATE = "$__rate_interval"
ALL = ".*"
TITLES = {
    "fleet": "Cache fleet",
    "overview": "Cache overview",
    "detail": "Cache detail",
    "redis": "Redis server",
    "self": "cachewatch",
}


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str
    exemplar: bool = False
    instant: bool = False
    unit: str | None = None
    """A unit of this query's series when it differs from the panel's."""
    table: bool = False
    """An instant query in table format (one row per series, one column per label)."""


@dataclass
class Panel:
    """What one panel shows; ``kind`` is ``timeseries``, ``stat`` or ``table``."""

    title: str
    description: str
    targets: list[Target]
    unit: str = "short"
    kind: str = "timeseries"
    thresholds: list[tuple[float | None, str]] = field(default_factory=list)
    min: float | None = None
    max: float | None = None
    width: int = 12
    link: tuple[str, str] | None = None
    """(title, URL) of a data link on every value: e.g. to the cache's detail dashboard."""


@dataclass(frozen=True)
class Scope:
    """A dashboard's template variables, as the label matchers its queries carry."""

    group_labels: tuple[str, ...]
    cache: bool = True
    """Whether the dashboard has a ``$cache`` variable (the cache dashboards do)."""

    def service(self, *extra: str) -> str:
        """Matchers of a per-service series (recording rules): group labels and cache."""
        return self._selector(False, extra)

    def process(self, *extra: str) -> str:
        """Matchers of a per-process series (raw metrics): those and ``instance``."""
        return self._selector(True, extra)

    def _selector(self, instance: bool, extra: tuple[str, ...]) -> str:
        names = (*self.group_labels, *(("instance",) if instance else ()))
        names += ("cache",) if self.cache else ()
        return "{" + ",".join((*(f'{n}=~"${n}"' for n in names), *extra)) + "}"

    @property
    def legend(self) -> str:
        """The group labels as a legend prefix: ``{{cluster}} {{job}}``."""
        return " ".join(f"{{{{{label}}}}}" for label in self.group_labels)

    def detail_link(self, value: str) -> tuple[str, str]:
        """A data link to the Cache detail dashboard of the series under the pointer;
        ``value`` is Grafana's reference to one label (``__field.labels.{}``)."""
        labels = (*self.group_labels, "cache")
        query = "&".join(f"var-{label}=${{{value.format(label)}}}" for label in labels)
        return "Cache detail", f"/d/{DASHBOARD_UIDS['detail']}?{query}&${{__url_time_range}}"


def variables(scope: Scope, metric: str, cache: str | None = "multi") -> list[Any]:
    """A variable per group label, then ``instance`` and (``multi`` or ``single``) ``cache``,
    each offering the values that the variables before it leave; ``metric`` is a selector
    (``redis_up``, ``{__name__=~"a|b"}``)."""
    names = [*scope.group_labels, "instance", *(["cache"] if cache else [])]
    out = []
    for index, name in enumerate(names):
        name_part, _, inside = metric.rstrip("}").partition("{")
        matchers = [m for m in (inside, *(f'{n}=~"${n}"' for n in names[:index])) if m]
        selector = name_part + ("{" + ",".join(matchers) + "}" if matchers else "")
        single = name == "cache" and cache == "single"
        variable = (
            db.QueryVariable(name)
            .label(name.replace("_", " ").capitalize())
            .datasource(PROMETHEUS)
            .query(f"label_values({selector}, {name})")
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(dm.VariableSort.ALPHABETICAL_ASC)
        )
        if not single:
            variable.multi(True).include_all(True).all_value(ALL)
            variable.current(dm.VariableOption(selected=True, text="All", value="$__all"))
        out.append(variable)
    return out


def _build_panel(panel: Panel) -> Any:
    builders: dict[str, Any] = {"timeseries": tb.Panel, "stat": sb.Panel, "table": tab.Panel}
    builder: Any = builders[panel.kind]()
    builder.title(panel.title).description(panel.description).datasource(PROMETHEUS)
    builder.unit(panel.unit).height(8).span(panel.width)
    if panel.min is not None:
        builder.min(panel.min)
    if panel.max is not None:
        builder.max(panel.max)
    if panel.thresholds:
        steps = [dm.Threshold(value=v, color=col) for v, col in panel.thresholds]
        builder.thresholds(db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(steps))
        if panel.kind == "timeseries":
            builder.thresholds_style(
                cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED)
            )
    if panel.link:
        title, url = panel.link
        builder.data_links([db.DashboardLink(title).url(url)])
    if panel.kind == "timeseries":
        builder.legend(
            cb.VizLegendOptions()
            .display_mode(cm.LegendDisplayMode.TABLE)
            .placement(cm.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
    elif panel.kind == "stat":
        builder.reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]))
    else:
        # One row per series: the labels as columns, the value last; no time column.
        builder.with_transformation(
            dm.DataTransformerConfig(
                id_val="organize",
                options={"excludeByName": {"Time": True}, "renameByName": {"Value": panel.title}},
            )
        )
    for index, target in enumerate(panel.targets):
        query = (
            pb.Dataquery()
            .expr(target.expr)
            .legend_format(target.legend)
            .ref_id(chr(ord("A") + index))
            .datasource(PROMETHEUS)
        )
        if target.exemplar:
            query.exemplar(True)
        if target.instant or target.table:
            query.instant()
        if target.table:
            query.format(pm.PromQueryFormat.TABLE)
        builder.with_target(query)
        if target.unit is not None:
            builder.override_by_query(
                chr(ord("A") + index), [dm.DynamicConfigValue(id_val="unit", value=target.unit)]
            )
    return builder


def dashboard(
    key: str, description: str, panels: list[Panel], template: list[Any]
) -> dict[str, Any]:
    """The JSON of dashboard ``key`` (of ``DASHBOARD_UIDS``) with links to the others."""
    uid = DASHBOARD_UIDS[key]
    builder = (
        db.Dashboard(TITLES[key])
        .uid(uid)
        .description(description)
        .tags(["cachewatch"])
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
    )
    for variable in template:
        builder.with_variable(variable)
    for other, title in TITLES.items():
        if other != key:
            builder.link(
                db.DashboardLink(title)
                .type(dm.DashboardLinkType.LINK)
                .url(f"/d/{DASHBOARD_UIDS[other]}")
                .keep_time(True)
                .include_vars(True)
            )
    for panel in panels:
        builder.with_panel(_build_panel(panel))
    document: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    return document
