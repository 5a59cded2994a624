"""The exporter's own alert states, evaluated from the sampled signals.

Each alert in force (``thresholds.AlertRules``: the definitions, each cache's own thresholds,
the changes made at run time) is evaluated per cache (``CacheSourceDown`` per source):
inactive -> pending (the condition holds) -> firing (it held for the threshold's ``for``)
-> resolved (it no longer holds). A warning that keeps firing past the escalation time is
escalated to critical. Every transition is counted and logged; a log notification within the
cooldown of the previous one for the same alert and cache is held back (and counted into the
next one), unless it raises the severity, so a flapping alert does not spam.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from .. import catalog
from ..config.alerting import holds
from ..units import duration
from .definitions import CRITICAL, WARNING, AlertDefinition, Threshold
from .signals import CacheSignals
from .statistics import AlertStatistics
from .thresholds import AlertRules, RuleSet, describe

log = logging.getLogger("cachewatch.alerts")

INACTIVE, PENDING, FIRING, RESOLVED, ESCALATED = (
    "inactive", "pending", "firing", "resolved", "escalated",
)  # fmt: skip
SEVERITY_RANK = {WARNING: 1, CRITICAL: 2}
IDLE_GUARDED = "hit_ratio"
"""The signal that means nothing for an idle cache: its alerts wait for enough lookups."""
FORGET_AFTER_SECONDS = 3600.0


@dataclass
class AlertState:
    """Where one alert stands for one cache (or source)."""

    alertname: str
    cache: str
    state: str = INACTIVE
    severity: str | None = None
    escalated: bool = False
    value: float | None = None
    threshold: float | None = None
    since: float = 0.0
    pending_since: float | None = None
    firing_since: float | None = None
    escalated_at: float | None = None
    held_since: dict[str, float] = field(default_factory=dict)
    summary: str = ""

    def as_json(self) -> dict[str, Any]:
        body = asdict(self)
        del body["held_since"]
        return body


@dataclass(frozen=True)
class Transition:
    timestamp: float
    alertname: str
    cache: str
    severity: str
    state: str
    value: float | None
    threshold: float | None


def _holds(definition: AlertDefinition, threshold: Threshold, value: float | None) -> bool:
    return value is not None and holds(value, definition.operator, threshold.value)


def _top(thresholds: Iterable[Threshold]) -> Threshold | None:
    return max(thresholds, key=lambda t: SEVERITY_RANK[t.severity], default=None)


def _format(value: float | None) -> str:
    return "none" if value is None else f"{value:.6g}"


class AlertEvaluator(Collector):
    """Evaluates the alert definitions on every sample and publishes the alert gauges."""

    def __init__(
        self,
        rules: AlertRules,
        *,
        statistics: AlertStatistics | None = None,
        history: int = 500,
    ) -> None:
        self.rules = rules
        self.statistics = statistics or AlertStatistics()
        self._states: dict[tuple[str, str], AlertState] = {}
        self._history: deque[Transition] = deque(maxlen=history)
        self._counts: dict[tuple[str, str, str], int] = {}
        self._last_notified: dict[tuple[str, str], tuple[float, str]] = {}
        self._suppressed: dict[tuple[str, str], int] = {}
        self._last_now = float("-inf")
        self._cooldown = rules.current.settings.alert_notify_cooldown_seconds
        self.notifications = 0
        self._lock = threading.Lock()

    @property
    def definitions(self) -> list[AlertDefinition]:
        """The definitions in force now."""
        return list(self.rules.current.definitions)

    # --- evaluation --------------------------------------------------------------------------
    def evaluate(
        self, now: float, caches: Iterable[CacheSignals], sources: Mapping[str, bool]
    ) -> list[Transition]:
        """Advance every state to ``now`` (never back: a later call with an earlier time
        counts as the same moment); returns the transitions this step made."""
        caches = list(caches)
        made: list[Transition] = []
        rules = self.rules.current
        definitions = rules.by_name
        with self._lock:
            now = self._last_now = max(now, self._last_now)
            self._cooldown = rules.settings.alert_notify_cooldown_seconds
            seen: set[tuple[str, str]] = set()
            for definition in rules.definitions:
                subjects: list[tuple[str, float | None]]
                if definition.per_cache:
                    subjects = [(c.cache, self._value(definition, c, rules)) for c in caches]
                else:
                    subjects = [(name, 1.0 if up else 0.0) for name, up in sources.items()]
                for subject, value in subjects:
                    seen.add((definition.name, subject))
                    made += self._step(definition, subject, value, now, rules)
            for key, state in list(self._states.items()):
                if key not in seen:
                    gone = definitions.get(key[0])
                    if gone is None:  # no longer defined (a reload removed it): resolve it
                        made += self._forget(state, now)
                        continue
                    made += self._step(gone, key[1], None, now, rules)
                if state.state in (INACTIVE, RESOLVED) and now - state.since > max(
                    FORGET_AFTER_SECONDS, self._cooldown
                ):
                    del self._states[key]
            for transition in made:
                counted = (transition.alertname, transition.severity, transition.state)
                self._counts[counted] = self._counts.get(counted, 0) + 1
                self._history.append(transition)
            self.statistics.advance(now)
        for transition in made:
            self._notify(transition)
        return made

    def _forget(self, state: AlertState, now: float) -> list[Transition]:
        """Drop the state of an alert that is no longer defined, resolving it if it fired."""
        del self._states[(state.alertname, state.cache)]
        if state.state != FIRING:
            return []
        self.statistics.resolved(state.alertname, state.cache, now)
        return [
            Transition(now, state.alertname, state.cache, state.severity or WARNING, RESOLVED,
                       None, state.threshold)
        ]  # fmt: skip

    def _value(
        self, definition: AlertDefinition, signals: CacheSignals, rules: RuleSet
    ) -> float | None:
        if definition.signal == IDLE_GUARDED and (
            signals.request_rate is None
            or signals.request_rate < rules.settings.hit_ratio_min_request_rate
        ):
            return None  # an idle cache's hit ratio means nothing
        return signals.signal(definition.signal)

    def _step(
        self,
        definition: AlertDefinition,
        subject: str,
        value: float | None,
        now: float,
        rules: RuleSet,
    ) -> list[Transition]:
        key = (definition.name, subject)
        state = self._states.get(key)
        thresholds = (
            rules.thresholds(definition, subject)
            if definition.per_cache
            else (definition.thresholds)
        )
        held = [t for t in thresholds if _holds(definition, t, value)]
        if state is None:
            if not held:
                return []
            state = self._states[key] = AlertState(definition.name, subject, since=now)
        state.value = value
        held_severities = {t.severity for t in held}
        for threshold in thresholds:
            if threshold.severity in held_severities:
                state.held_since.setdefault(threshold.severity, now)
            else:
                state.held_since.pop(threshold.severity, None)
        ready = _top(
            t for t in held if now - state.held_since[t.severity] >= t.for_seconds
        )  # fmt: skip
        top = _top(held)
        made: list[Transition] = []

        def move(to: str, threshold: Threshold | None, severity: str | None = None) -> None:
            severity = severity or (threshold.severity if threshold else state.severity)
            state.state, state.since = (FIRING if to == ESCALATED else to), now
            state.severity = severity
            if threshold is not None:
                state.threshold = threshold.value
            made.append(
                Transition(now, definition.name, subject, severity or WARNING, to, value,
                           state.threshold)
            )  # fmt: skip

        escalate_after = rules.settings.alert_escalate_after_seconds
        if state.state in (INACTIVE, RESOLVED):
            if ready is not None:
                state.pending_since = state.firing_since = now
                state.escalated = False
                move(FIRING, ready)
                self.statistics.fired(definition.name, subject, now)
            elif top is not None:
                state.pending_since, state.escalated = now, False
                move(PENDING, top)
        elif state.state == PENDING:
            if ready is not None:
                state.firing_since = now
                move(FIRING, ready)
                self.statistics.fired(definition.name, subject, now)
            elif top is None:
                state.pending_since = None
                move(INACTIVE, None)
            elif top.severity != state.severity:
                state.severity, state.threshold = top.severity, top.value
        elif state.state == FIRING:
            if top is None:
                state.pending_since = state.firing_since = state.escalated_at = None
                move(RESOLVED, None)
                self.statistics.resolved(definition.name, subject, now)
            else:
                current = state.severity or WARNING
                if ready is not None and SEVERITY_RANK[ready.severity] > SEVERITY_RANK[current]:
                    move(FIRING, ready)
                elif (
                    not state.escalated
                    and ready is not None
                    and SEVERITY_RANK[ready.severity] < SEVERITY_RANK[current]
                ):
                    move(FIRING, ready)  # back from a critical threshold to the warning one
                if (
                    rules.escalates(definition, subject)
                    and not state.escalated
                    and state.severity == WARNING
                    and state.firing_since is not None
                    and now - state.firing_since >= escalate_after
                ):
                    state.escalated, state.escalated_at = True, now
                    move(ESCALATED, None, CRITICAL)
        state.summary = self._summary(definition, state)
        return made

    @staticmethod
    def _summary(definition: AlertDefinition, state: AlertState) -> str:
        if state.state in (INACTIVE, RESOLVED):
            return f"{definition.signal}={_format(state.value)}"
        text = (
            f"{definition.signal}={_format(state.value)} {definition.operator} "
            f"{_format(state.threshold)}"
        )
        if state.escalated and state.firing_since is not None and state.escalated_at is not None:
            # The threshold that holds is the warning's: say so, and how long it lasted.
            warned = duration(state.escalated_at - state.firing_since)
            return f"{text} ({WARNING} for {warned}, escalated to {CRITICAL})"
        return f"{text} ({state.severity})"

    # --- notifications -----------------------------------------------------------------------
    def _notify(self, transition: Transition) -> None:
        key = (transition.alertname, transition.cache)
        previous = self._last_notified.get(key)
        raises = previous is None or SEVERITY_RANK.get(transition.severity, 0) > SEVERITY_RANK.get(
            previous[1], 0
        )
        within = previous is not None and transition.timestamp - previous[0] < self._cooldown
        if within and not (raises and transition.state in (FIRING, ESCALATED)):
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        held_back = self._suppressed.pop(key, 0)
        self._last_notified[key] = (transition.timestamp, transition.severity)
        self.notifications += 1
        level = logging.WARNING if transition.state in (FIRING, ESCALATED) else logging.INFO
        log.log(
            level,
            "alert %s %s cache=%s severity=%s value=%s threshold=%s%s",
            transition.alertname,
            transition.state,
            transition.cache,
            transition.severity,
            _format(transition.value),
            _format(transition.threshold),
            f" suppressed_since_last={held_back}" if held_back else "",
        )

    # --- reading -----------------------------------------------------------------------------
    def states(self) -> list[AlertState]:
        with self._lock:
            return [
                AlertState(**{**asdict(s), "held_since": dict(s.held_since)})
                for s in self._states.values()
            ]

    def transitions(self, limit: int | None = None) -> list[Transition]:
        with self._lock:
            items = list(self._history)
        return items[-limit:] if limit else items

    def firing(self, cache: str | None = None) -> list[AlertState]:
        return [
            s for s in self.states() if s.state == FIRING and (cache is None or s.cache == cache)
        ]

    def cache_status(self, cache: str) -> tuple[str, list[str]]:
        """ok / warning / critical for one cache, with the firing alerts as reasons."""
        firing = self.firing(cache)
        reasons = [f"{s.alertname}: {s.summary}" for s in firing]
        if any(s.severity == CRITICAL for s in firing):
            return CRITICAL, reasons
        return (WARNING if firing else "ok"), reasons

    def as_json(self, limit: int = 100) -> dict[str, Any]:
        states = sorted(self.states(), key=lambda s: (s.alertname, s.cache))
        return {
            "alerts": [s.as_json() for s in states if s.state != INACTIVE],
            "firing": sum(1 for s in states if s.state == FIRING),
            "pending": sum(1 for s in states if s.state == PENDING),
            "transitions": [asdict(t) for t in reversed(self.transitions(limit))],
            "definitions": describe(self.rules.current),
            "statistics": self.statistics.records(),
        }

    def collect(self) -> Iterator[Metric]:
        rules = self.rules.current
        active = catalog.ALERT_ACTIVE.family()
        by_name = rules.by_name
        for state in sorted(self.states(), key=lambda s: (s.alertname, s.cache)):
            definition = by_name.get(state.alertname)
            if definition is None:
                continue
            severities = {t.severity for t in definition.thresholds}
            if rules.escalates(definition, state.cache) or state.escalated:
                severities.add(CRITICAL)
            for severity in sorted(severities):
                on = state.state == FIRING and state.severity == severity
                active.add_metric([state.alertname, state.cache, severity], 1 if on else 0)
        yield active
        transitions = catalog.ALERT_TRANSITIONS.family()
        with self._lock:
            counts = dict(self._counts)
        for (name, severity, to), count in sorted(counts.items()):
            transitions.add_metric([name, severity, to], count)
        yield transitions
