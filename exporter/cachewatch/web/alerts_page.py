"""/alerts for a browser: the alert states with their evidence, the recent transitions, and
every alert's thresholds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import units
from .html import Page, ago, e, state, table


def render(alerts: Mapping[str, Any]) -> Page:
    states = [
        [state(a["state"]), e(a["alertname"]), e(a["cache"]), state(a["severity"]),
         f'<span class="evidence">{e(a["summary"])}</span>', ago(a["since"])]
        for a in alerts["alerts"]
    ]  # fmt: skip
    transitions = [
        [ago(t["timestamp"]), e(t["alertname"]), e(t["cache"]), state(t["state"]),
         state(t["severity"]), e(t["value"] if t["value"] is not None else units.NONE),
         e(t["threshold"] if t["threshold"] is not None else units.NONE)]
        for t in alerts["transitions"]
    ]  # fmt: skip
    defined = []
    for d in alerts["definitions"]:
        thresholds = "; ".join(
            f"{t['severity']} {'above' if d['fires'] == 'above' else 'below'} {t['value']:g} "
            f"for {units.duration(t['for_seconds'])}"
            for t in d["thresholds"]
        )
        escalates = d["escalates_after_seconds"]
        defined.append(
            [e(d["alertname"]), e(d["summary"]), f'<span class="evidence">{e(d["signal"])}</span>',
             e(thresholds), e(units.duration(escalates)) if escalates else units.NONE]
        )  # fmt: skip
    body = [
        f"<h2>Alert states: {alerts['firing']} firing, {alerts['pending']} pending</h2>",
        table(
            ("State", "Alert", "Cache", "Severity", "Evidence", "Since"), states,
            empty="No alert is firing, pending or recently resolved.",
        ),
        "<h2>Recent transitions</h2>",
        table(
            ("When", "Alert", "Cache", "To", "Severity", "Value", "Threshold"), transitions,
            numeric={"Value", "Threshold"}, empty="No transition yet.",
        ),
        "<h2>Alerts and thresholds</h2>",
        table(
            ("Alert", "Summary", "Signal", "Thresholds", "Escalates after"), defined,
            numeric={"Escalates after"},
        ),
    ]  # fmt: skip
    return f"cachewatch alerts: {alerts['firing']} firing", "".join(body)
