"""The alert sections of the configuration file that hold more than one value: per-cache
threshold overrides (``alerts.overrides``) and custom alerts (``alerts.custom``).

They are YAML only: no flag or variable can hold a mapping of caches or a list of alerts.
Every mistake is one ``ConfigError`` naming the file and the path inside it
(``alerts.custom[1].op``), so a bad file stops the command with exit status 2, and a
reload refuses it and keeps the running settings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import catalog
from .settings import ConfigError, Setting, settings
from .values import parse_bool, parse_duration, parse_number

OPERATORS = (">", ">=", "<", "<=", "==", "!=")
SEVERITIES = ("warning", "critical")
ALERT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
OVERRIDES_PATH = ("alerts", "overrides")
CUSTOM_PATH = ("alerts", "custom")
CUSTOM_SIGNALS = tuple(name for name in catalog.SIGNALS if name != "source_up")
"""What a custom alert may read besides the catalogued metrics (``source_up`` is about a
source, not a cache)."""
CUSTOM_METRICS = tuple(spec.name for spec in catalog.ALERTABLE)

THRESHOLD_ORDER: tuple[tuple[str, str, str], ...] = (
    ("hit_ratio_critical", "above", "hit_ratio_warning"),
    ("memory_critical_mb", "below", "memory_warning_mb"),
    ("error_ratio_critical", "below", "error_ratio_warning"),
)
"""(critical, must not be ..., warning): a critical threshold is never on the healthy side of
its warning."""


@dataclass(frozen=True)
class ThresholdOverride:
    """One cache's own threshold: ``key`` is a per-cache threshold setting (its field name,
    e.g. ``hit_ratio_warning``) or a custom alert's name; ``value`` is in the unit of that
    setting (MB, seconds, a ratio) or of the custom alert."""

    cache: str
    key: str
    value: float


@dataclass(frozen=True)
class CustomAlert:
    """An alert defined in the configuration file: ``reads`` (a catalogued metric or a signal)
    ``operator`` ``threshold``, firing at ``severity`` after ``for_seconds`` (None:
    ``alerts.for``); a warning escalates to critical when ``escalation`` is on."""

    name: str
    reads: str
    operator: str
    threshold: float
    severity: str = "warning"
    for_seconds: float | None = None
    escalation: bool = False
    summary: str = ""
    description: str = ""
    runbook: str = ""
    """What to do, for the generated runbook page (a stub to fill in when empty)."""
    origin: str = field(default="", compare=False)
    """Where it was defined (``FILE: alerts.custom[0]``), for messages."""

    @property
    def reads_metric(self) -> bool:
        """True for a catalogued metric, False for a signal."""
        return self.reads in catalog.BY_NAME


def holds(value: float, operator: str, threshold: float) -> bool:
    """``value operator threshold``, as PromQL's filtering comparison would say."""
    if operator == ">":
        return value > threshold
    if operator == ">=":
        return value >= threshold
    if operator == "<":
        return value < threshold
    if operator == "<=":
        return value <= threshold
    if operator == "==":
        return value == threshold
    if operator == "!=":
        return value != threshold
    raise ValueError(f"invalid operator {operator!r}")


# --- the per-cache threshold settings ---------------------------------------------------------
def per_cache_settings() -> dict[str, tuple[str, Setting]]:
    """YAML key (as under ``alerts:``) -> (field name, setting) of every threshold that a
    cache may override."""
    found = {}
    for name, meta, _ in settings():
        if meta.per_cache:
            found[meta.yaml_path[-1]] = (name, meta)
    return found


def check_threshold_order(values: Mapping[str, float], where: str = "") -> None:
    """Raise when a critical threshold is on the healthy side of its warning in ``values``
    (field name -> value); ``where`` prefixes the message (``alerts.overrides.c1: ``)."""
    keys = {name: meta.key for name, meta, _ in settings()}
    for critical, side, warning in THRESHOLD_ORDER:
        if critical not in values or warning not in values:
            continue
        low, high = values[critical], values[warning]
        wrong = low > high if side == "above" else low < high
        if wrong:
            relation = ">" if side == "above" else "<"
            raise ConfigError(
                f"{where}{keys[critical]} must not be {side} {keys[warning]} "
                f"({values[critical]:g} {relation} {values[warning]:g})"
            )


# --- parsing -----------------------------------------------------------------------------------
def _mapping(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a mapping")
    return {str(key): value for key, value in raw.items()}


def _scalar(raw: Any, where: str) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, (str, int, float)):
        return str(raw)
    raise ConfigError(f"{where}: expected a single value, got {type(raw).__name__}")


def _parsed(parse: Callable[[str], Any], raw: Any, where: str) -> Any:
    try:
        return parse(_scalar(raw, where))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _text(raw: Any, where: str) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise ConfigError(f"{where}: expected text, got {type(raw).__name__}")
    return raw.strip()


def _unknown(name: str, known: Collection[str], what: str) -> str:
    import difflib  # only for a mistake

    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {what} {name!r}{hint}"


CUSTOM_KEYS = (
    "alert", "metric", "signal", "op", "threshold", "severity", "for", "escalation",
    "summary", "description", "runbook",
)  # fmt: skip


def parse_custom_alert(raw: Any, where: str, reserved: Collection[str] = ()) -> CustomAlert:
    """One entry of ``alerts.custom``; ``reserved`` are names taken (the built-in alerts)."""
    entry = _mapping(raw, where)
    for key in entry:
        if key not in CUSTOM_KEYS:
            raise ConfigError(f"{where}: {_unknown(key, CUSTOM_KEYS, 'key')}")
    name = _text(entry.get("alert"), f"{where}.alert")
    if not name:
        raise ConfigError(f"{where}.alert: every custom alert needs a name")
    if not ALERT_NAME.fullmatch(name):
        raise ConfigError(f"{where}.alert: invalid alert name {name!r} (letters, digits, _)")
    if name in reserved:
        raise ConfigError(f"{where}.alert: {name!r} is a built-in alert; pick another name")
    where = f"{where} ({name})"
    if ("metric" in entry) == ("signal" in entry):
        raise ConfigError(f"{where}: give either metric (a catalogued metric) or signal")
    if "metric" in entry:
        reads = _text(entry["metric"], f"{where}.metric")
        if reads not in CUSTOM_METRICS:
            reason = _unknown(reads, CUSTOM_METRICS, "metric")
            if reads in catalog.BY_NAME:
                reason = f"{reads!r} is not a per-cache counter or gauge that alerts can read"
            raise ConfigError(f"{where}.metric: {reason} (see docs/configuration.md)")
    else:
        reads = _text(entry["signal"], f"{where}.signal")
        if reads not in CUSTOM_SIGNALS:
            reason = _unknown(reads, CUSTOM_SIGNALS, "signal")
            raise ConfigError(f"{where}.signal: {reason} (one of: {', '.join(CUSTOM_SIGNALS)})")
    operator = _scalar(entry.get("op", ""), f"{where}.op").strip()
    if operator not in OPERATORS:
        raise ConfigError(
            f"{where}.op: invalid operator {operator!r} (one of: {' '.join(OPERATORS)})"
        )
    if "threshold" not in entry:
        raise ConfigError(f"{where}.threshold: required (a number)")
    threshold = _parsed(parse_number, entry["threshold"], f"{where}.threshold")
    severity = _scalar(entry.get("severity", "warning"), f"{where}.severity").strip().lower()
    if severity not in SEVERITIES:
        raise ConfigError(
            f"{where}.severity: invalid severity {severity!r} (one of: {', '.join(SEVERITIES)})"
        )
    for_seconds = None
    if entry.get("for") is not None:
        for_seconds = _parsed(parse_duration, entry["for"], f"{where}.for")
    escalation = severity == "warning"
    if entry.get("escalation") is not None:
        escalation = _parsed(parse_bool, entry["escalation"], f"{where}.escalation")
        if escalation and severity != "warning":
            raise ConfigError(f"{where}.escalation: only a warning escalates (to critical)")
    return CustomAlert(
        name=name,
        reads=reads,
        operator=operator,
        threshold=threshold,
        severity=severity,
        for_seconds=for_seconds,
        escalation=escalation,
        summary=_text(entry.get("summary"), f"{where}.summary"),
        description=_text(entry.get("description"), f"{where}.description"),
        runbook=_text(entry.get("runbook"), f"{where}.runbook"),
        origin=where,
    )


def parse_custom_alerts(
    raw: Any, where: str, reserved: Collection[str] = ()
) -> tuple[CustomAlert, ...]:
    """``alerts.custom``: a list of custom alerts with distinct names."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: must be a list of alerts")
    alerts: list[CustomAlert] = []
    for index, item in enumerate(raw):
        alert = parse_custom_alert(item, f"{where}[{index}]", reserved)
        if any(a.name == alert.name for a in alerts):
            raise ConfigError(f"{where}[{index}].alert: {alert.name!r} is defined twice")
        alerts.append(alert)
    return tuple(alerts)


def parse_overrides(
    raw: Any,
    where: str,
    custom: Collection[CustomAlert] = (),
    defaults: Mapping[str, float] | None = None,
) -> tuple[ThresholdOverride, ...]:
    """``alerts.overrides``: ``{CACHE: {KEY: VALUE}}`` where KEY is a per-cache threshold
    setting (as under ``alerts:``) or a custom alert's name. ``defaults`` (field name ->
    value) are the thresholds of every cache, to check each cache's warning/critical order."""
    thresholds = per_cache_settings()
    custom_names = {alert.name for alert in custom}
    found: list[ThresholdOverride] = []
    for cache, values in _mapping(raw, where).items():
        at = f"{where}.{cache}"
        if not cache.strip():
            raise ConfigError(f"{at}: a cache name must not be empty")
        merged = dict(defaults or {})
        for key, value in _mapping(values, at).items():
            if key in thresholds:
                name, meta = thresholds[key]
                parsed = _parsed(meta.parse, value, f"{at}.{key}")
                merged[name] = parsed
            elif key in custom_names:
                name, parsed = key, _parsed(parse_number, value, f"{at}.{key}")
            else:
                choices = [*thresholds, *sorted(custom_names)]
                raise ConfigError(f"{at}: {_unknown(key, choices, 'threshold')}")
            if not math.isfinite(parsed):  # pragma: no cover - the parsers refuse these
                raise ConfigError(f"{at}.{key}: must be finite")
            found.append(ThresholdOverride(cache, name, float(parsed)))
        check_threshold_order(merged, f"{at}: ")
    return tuple(found)
