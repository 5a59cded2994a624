"""The alerts in force in a running process: the definitions of the alert settings, each
cache's own thresholds from the configuration file, and the changes made at run time.

Thresholds are looked up from the most specific to the least: a value set at run time for
the cache, the cache's override in the file, a value set at run time for every cache, the
setting. A reload (SIGHUP, ``POST /-/reload``) replaces the settings and the file's
overrides; values set at run time (``configure_alert_threshold``) stay in force over them
until set back with ``threshold=None``. ``ThresholdCollector`` publishes what is in force
as ``cachewatch_alert_threshold`` and ``cachewatch_alert_escalation_enabled``, the series
the generated rules compare against.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from .. import catalog
from ..config.alerting import check_threshold_order, per_cache_settings
from ..config.settings import AlertSettings, ConfigError
from ..snapshot import FamilyCache
from .definitions import WARNING, AlertDefinition, Threshold, alert_definitions, by_name

DEFAULT, FILE, RUNTIME = "setting", "config file", "run time"
"""Where a threshold in force comes from."""

ThresholdKey = tuple[str, str, str | None]
"""(alertname, severity, cache or None for every cache)."""
EscalationKey = tuple[str, str | None]


@dataclass(frozen=True)
class RuleSet:
    """One immutable state of the alerts in force; readers take it once per evaluation."""

    settings: AlertSettings
    definitions: tuple[AlertDefinition, ...]
    file: Mapping[ThresholdKey, float] = field(default_factory=dict)
    """The file's per-cache overrides, in the signals' units."""
    runtime: Mapping[ThresholdKey, float] = field(default_factory=dict)
    runtime_escalation: Mapping[EscalationKey, bool] = field(default_factory=dict)

    @property
    def by_name(self) -> dict[str, AlertDefinition]:
        return by_name(self.definitions)

    def lookup(self, alertname: str, threshold: Threshold, cache: str | None) -> tuple[float, str]:
        """(value, origin) of one threshold for ``cache`` (None: the default of every cache)."""
        severity = threshold.severity
        if cache is not None:
            for table, origin in ((self.runtime, RUNTIME), (self.file, FILE)):
                value = table.get((alertname, severity, cache))
                if value is not None:
                    return value, origin
        value = self.runtime.get((alertname, severity, None))
        if value is not None:
            return value, RUNTIME
        return threshold.value, DEFAULT

    def thresholds(self, definition: AlertDefinition, cache: str | None) -> tuple[Threshold, ...]:
        """The definition's thresholds with the values in force for ``cache``."""
        return tuple(
            dataclasses.replace(t, value=self.lookup(definition.name, t, cache)[0])
            for t in definition.thresholds
        )

    def escalates(self, definition: AlertDefinition, cache: str | None) -> bool:
        if not can_escalate(definition):
            return False
        if cache is not None and (definition.name, cache) in self.runtime_escalation:
            return self.runtime_escalation[(definition.name, cache)]
        return self.runtime_escalation.get((definition.name, None), definition.escalates)

    def overridden(self) -> list[tuple[str, str, str, float, str]]:
        """(alertname, severity, cache, value, origin) of every per-cache threshold."""
        keys = {k for k in (*self.file, *self.runtime) if k[2] is not None}
        found = []
        definitions = self.by_name
        for alertname, severity, cache in sorted(keys, key=lambda k: (k[0], k[1], k[2] or "")):
            definition = definitions.get(alertname)
            threshold = definition.threshold(severity) if definition else None
            if threshold is not None and cache is not None:
                value, origin = self.lookup(alertname, threshold, cache)
                found.append((alertname, severity, cache, value, origin))
        return found

    def escalation_overridden(self) -> list[tuple[str, str, bool]]:
        """(alertname, cache, escalates) of every per-cache escalation set at run time."""
        definitions = self.by_name
        return [
            (name, cache, value)
            for (name, cache), value in sorted(self.runtime_escalation.items(), key=str)
            if cache is not None and name in definitions and can_escalate(definitions[name])
        ]


def can_escalate(definition: AlertDefinition) -> bool:
    """Whether the alert has a warning that could be escalated to critical."""
    return definition.per_cache and definition.threshold(WARNING) is not None


def _file_overrides(
    settings: AlertSettings, definitions: tuple[AlertDefinition, ...]
) -> dict[ThresholdKey, float]:
    by_key = {t.key: (d, t) for d in definitions for t in d.thresholds if t.key}
    found: dict[ThresholdKey, float] = {}
    for override in settings.alert_overrides:
        definition, threshold = by_key[override.key]
        found[(definition.name, threshold.severity, override.cache)] = (
            override.value * threshold.scale
        )
    return found


def _check_value(definition: AlertDefinition, threshold: Threshold, value: float) -> None:
    """A threshold set at run time must be one its setting would accept."""
    if not math.isfinite(value):
        raise ValueError(f"{definition.name}: the threshold must be a finite number")
    settings = {name: meta for name, meta in per_cache_settings().values()}
    meta = settings.get(threshold.key)
    if meta is not None:
        try:
            meta.parse(repr(value / threshold.scale))
        except ValueError as exc:
            raise ValueError(f"{definition.name} {threshold.severity}: {exc}") from None


class AlertRules:
    """The alerts in force, changed by reloads and at run time; thread-safe."""

    def __init__(self, settings: AlertSettings) -> None:
        self._lock = threading.Lock()
        self._state = self._build(settings, {}, {})

    @property
    def current(self) -> RuleSet:
        return self._state

    @staticmethod
    def _build(
        settings: AlertSettings,
        runtime: Mapping[ThresholdKey, float],
        escalation: Mapping[EscalationKey, bool],
    ) -> RuleSet:
        definitions = tuple(alert_definitions(settings))
        names = by_name(definitions)
        kept = {
            k: v
            for k, v in runtime.items()
            if k[0] in names and names[k[0]].threshold(k[1]) is not None
        }
        kept_escalation = {k: v for k, v in escalation.items() if k[0] in names}
        return RuleSet(
            settings, definitions, _file_overrides(settings, definitions), kept, kept_escalation
        )

    def apply(self, settings: AlertSettings) -> RuleSet:
        """New settings (a reload); values set at run time for alerts that remain stay. A
        ConfigError, changing nothing, when a critical threshold would then be on the healthy
        side of its warning for some cache."""
        with self._lock:
            state = self._state
            candidate = self._build(settings, state.runtime, state.runtime_escalation)
            for definition in candidate.definitions:
                try:
                    _check_order(candidate, definition, None)
                except ValueError as exc:  # with a value set at run time
                    raise ConfigError(f"{exc} (with the values set at run time)") from None
            self._state = candidate
            return candidate

    def configure(
        self,
        alertname: str,
        threshold: float | None,
        *,
        severity: str = WARNING,
        cache: str | None = None,
        escalation: bool | None = None,
    ) -> RuleSet:
        """Set (or with ``threshold=None`` drop) the run-time threshold of ``alertname`` at
        ``severity`` for ``cache`` (None: every cache), and optionally whether its warning
        escalates. Raises ValueError naming what is wrong; nothing changes then."""
        with self._lock:
            state = self._state
            definition = state.by_name.get(alertname)
            if definition is None:
                known = ", ".join(sorted(state.by_name))
                raise ValueError(f"unknown alert {alertname!r} (one of: {known})")
            if not definition.per_cache:
                raise ValueError(f"{alertname} has no threshold to configure")
            if cache is not None and not cache.strip():
                raise ValueError("cache must be a cache name or None (every cache)")
            target = definition.threshold(severity)
            if target is None:
                known = ", ".join(t.severity for t in definition.thresholds)
                raise ValueError(f"{alertname} has no {severity!r} threshold (it has: {known})")
            runtime = dict(state.runtime)
            key = (alertname, severity, cache)
            if threshold is None:
                runtime.pop(key, None)
            else:
                _check_value(definition, target, float(threshold))
                runtime[key] = float(threshold)
            escalations = dict(state.runtime_escalation)
            if escalation is not None:
                if escalation and not can_escalate(definition):
                    raise ValueError(f"{alertname} has no warning to escalate")
                escalations[(alertname, cache)] = bool(escalation)
            candidate = RuleSet(state.settings, state.definitions, state.file, runtime, escalations)
            _check_order(candidate, definition, cache)
            self._state = candidate
            return candidate


def _check_order(state: RuleSet, definition: AlertDefinition, cache: str | None) -> None:
    """A critical threshold stays on the bad side of its warning, for ``cache`` and (when
    the default changed) for every cache with its own thresholds."""
    caches = {cache} if cache is not None else {None, *(k[2] for k in state.file)}
    caches |= {k[2] for k in state.runtime if k[0] == definition.name}
    for each in caches:
        values = {
            t.key: state.lookup(definition.name, t, each)[0] / t.scale
            for t in definition.thresholds
            if t.key
        }
        where = f"cache {each}: " if each is not None else ""
        try:
            check_threshold_order(values, where)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None


def describe(state: RuleSet) -> list[dict[str, Any]]:
    """The definitions in force, for /alerts: defaults, each cache's own, escalation."""
    overridden = state.overridden()
    escalation = state.escalation_overridden()
    described = []
    for d in state.definitions:
        described.append(
            {
                "alertname": d.name,
                "summary": d.summary,
                "signal": d.signal,
                "unit": d.unit,
                "operator": d.operator,
                "fires": d.relation,
                "custom": d.custom is not None,
                "thresholds": [
                    {
                        "severity": t.severity,
                        "value": t.value,
                        "for_seconds": t.for_seconds,
                        "origin": state.lookup(d.name, t, None)[1],
                    }
                    for t in state.thresholds(d, None)
                ],
                "cache_thresholds": [
                    {"cache": cache, "severity": severity, "value": value, "origin": origin}
                    for name, severity, cache, value, origin in overridden
                    if name == d.name
                ],
                "escalates": state.escalates(d, None),
                "cache_escalation": [
                    {"cache": cache, "escalates": value}
                    for name, cache, value in escalation
                    if name == d.name
                ],
                "escalates_after_seconds": (
                    state.settings.alert_escalate_after_seconds if can_escalate(d) else None
                ),
            }
        )
    return described


class ThresholdCollector(Collector):
    """``cachewatch_alert_threshold`` and ``cachewatch_alert_escalation_enabled``: the
    defaults (``cache=""``) and every cache's own, as the generated rules read them."""

    def __init__(self, rules: AlertRules) -> None:
        self.rules = rules
        self._families = FamilyCache()
        """The families of the rule set in force: they change only when the rules do."""

    def collect(self) -> Iterator[Metric]:
        state = self.rules.current
        return iter(self._families.get(state, lambda: _families(state)))


def _families(state: RuleSet) -> Iterator[Metric]:
    """The two families of one rule set."""
    threshold = catalog.ALERT_THRESHOLD.family()
    escalation = catalog.ALERT_ESCALATION.family()
    for d in state.definitions:
        for t in state.thresholds(d, None):
            threshold.add_metric([d.name, t.severity, ""], t.value)
        if can_escalate(d):
            escalation.add_metric([d.name, ""], 1 if state.escalates(d, None) else 0)
    for name, severity, cache, value, _ in state.overridden():
        threshold.add_metric([name, severity, cache], value)
    for name, cache, value in state.escalation_overridden():
        escalation.add_metric([name, cache], 1 if value else 0)
    yield threshold
    yield escalation
