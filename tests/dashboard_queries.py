"""Dashboard queries as Grafana sends them: template variables resolved against a real
Prometheus (each one's values under the choices before it), then every panel's query with
the variables substituted the way a user would choose them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ALL = ".*"
LabelValues = Callable[[str, str], list[str]]


def dashboards(root: Path) -> list[tuple[str, dict[str, Any]]]:
    return [
        (p.stem, json.loads(p.read_text()))
        for p in sorted((root / "grafana/dashboards").glob("*.json"))
    ]


def variables(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return list(dashboard.get("templating", {}).get("list", []))


def _substitute(text: str, chosen: dict[str, str]) -> str:
    # Longest names first, so $instance is not read as $in + stance.
    for name in sorted(chosen, key=len, reverse=True):
        text = text.replace(f"${name}", chosen[name])
    return text


def variable_values(
    dashboard: dict[str, Any], label_values: LabelValues, fixed: dict[str, str] | None = None
) -> dict[str, list[str]]:
    """Each variable's values, with the variables before it at ``fixed`` or All."""
    chosen = dict(fixed or {})
    found: dict[str, list[str]] = {}
    for variable in variables(dashboard):
        match = re.fullmatch(r"label_values\((.+), *(\w+)\)", variable["query"])
        assert match, f"unsupported variable query {variable['query']}"
        selector, label = match.groups()
        found[variable["name"]] = label_values(label, _substitute(selector, chosen))
        chosen.setdefault(variable["name"], ALL)
    return found


def queries(
    dashboard: dict[str, Any],
    values: dict[str, list[str]],
    fixed: dict[str, str] | None = None,
    rate_interval: str = "10s",
) -> Iterator[tuple[str, str, list[str]]]:
    """(panel title, query, the substitutions to try): multi-select variables at ``fixed``
    or All; a single-select one at each of its values (any of them may have data)."""
    single = {v["name"] for v in variables(dashboard) if not v.get("multi")}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", rate_interval)
            chosen = {n: (fixed or {}).get(n, ALL) for n in values if n not in single}
            tries = [_substitute(expr, {**chosen, **{n: value for n in single}})
                     for value in _single_values(single, values)]  # fmt: skip
            yield panel["title"], target["expr"], tries


def _single_values(single: set[str], values: dict[str, list[str]]) -> list[str]:
    if not single:
        return [""]
    (name,) = single
    return values[name]
