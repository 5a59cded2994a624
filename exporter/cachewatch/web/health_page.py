"""/health for a browser: the verdict and every check with its detail."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .html import Page, e, pill, state, table


def _detail(check: Mapping[str, Any]) -> str:
    shown = []
    for key, value in sorted(check.items()):
        if key == "ok":
            continue
        if isinstance(value, list):
            value = "; ".join(str(v) for v in value) or "none"
        shown.append(f"{key}={value}")
    return f'<span class="evidence">{e(", ".join(shown))}</span>'


def render(health: Mapping[str, Any]) -> Page:
    status = str(health["status"])
    rows = [
        [e(name), state("ok" if check["ok"] else "failing"), _detail(check)]
        for name, check in sorted(health["checks"].items())
    ]
    body = (
        f'<div class="summary">{pill(status, status)}</div><h2>Checks</h2>'
        + table(("Check", "State", "Detail"), rows)
        + '<p class="muted">Probes: <a href="-/healthy">/-/healthy</a> (liveness), '
        '<a href="-/ready">/-/ready</a> (readiness).</p>'
    )
    return f"cachewatch health: {status}", body
