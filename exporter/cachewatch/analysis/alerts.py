"""The exporter's own alert states, evaluated from the sampled signals.

Each alert of ``alert_definitions`` is evaluated per cache (``CacheSourceDown`` per source):
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
from ..units import duration
from .definitions import CRITICAL, WARNING, AlertDefinition, Threshold
from .signals import CacheSignals

log = logging.getLogger("cachewatch.alerts")

INACTIVE, PENDING, FIRING, RESOLVED, ESCALATED = (
    "inactive", "pending", "firing", "resolved", "escalated",
)  # fmt: skip
SEVERITY_RANK = {WARNING: 1, CRITICAL: 2}
HIT_RATIO_ALERT = "CacheHitRatioLow"
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
    if value is None:
        return False
    return value > threshold.value if definition.above else value < threshold.value


def _top(thresholds: Iterable[Threshold]) -> Threshold | None:
    return max(thresholds, key=lambda t: SEVERITY_RANK[t.severity], default=None)


def _format(value: float | None) -> str:
    return "none" if value is None else f"{value:.6g}"


class AlertEvaluator(Collector):
    """Evaluates the alert definitions on every sample and publishes the alert gauges."""

    def __init__(
        self,
        definitions: Iterable[AlertDefinition],
        *,
        escalate_after: float,
        notify_cooldown: float,
        min_request_rate: float,
        history: int = 500,
    ) -> None:
        self.definitions = list(definitions)
        self.escalate_after = escalate_after
        self.notify_cooldown = notify_cooldown
        self.min_request_rate = min_request_rate
        self._states: dict[tuple[str, str], AlertState] = {}
        self._history: deque[Transition] = deque(maxlen=history)
        self._counts: dict[tuple[str, str, str], int] = {}
        self._last_notified: dict[tuple[str, str], tuple[float, str]] = {}
        self._suppressed: dict[tuple[str, str], int] = {}
        self.notifications = 0
        self._lock = threading.Lock()

    # --- evaluation --------------------------------------------------------------------------
    def evaluate(
        self, now: float, caches: Iterable[CacheSignals], sources: Mapping[str, bool]
    ) -> list[Transition]:
        """Advance every state to ``now``; returns the transitions this step made."""
        caches = list(caches)
        made: list[Transition] = []
        with self._lock:
            seen: set[tuple[str, str]] = set()
            for definition in self.definitions:
                subjects: list[tuple[str, float | None]]
                if definition.per_cache:
                    subjects = [(c.cache, self._value(definition, c)) for c in caches]
                else:
                    subjects = [(name, 1.0 if up else 0.0) for name, up in sources.items()]
                for subject, value in subjects:
                    seen.add((definition.name, subject))
                    made += self._step(definition, subject, value, now)
            for key, state in list(self._states.items()):
                if key not in seen:
                    definition = next(d for d in self.definitions if d.name == key[0])
                    made += self._step(definition, key[1], None, now)
                if state.state in (INACTIVE, RESOLVED) and now - state.since > max(
                    FORGET_AFTER_SECONDS, self.notify_cooldown
                ):
                    del self._states[key]
            for transition in made:
                counted = (transition.alertname, transition.severity, transition.state)
                self._counts[counted] = self._counts.get(counted, 0) + 1
                self._history.append(transition)
        for transition in made:
            self._notify(transition)
        return made

    def _value(self, definition: AlertDefinition, signals: CacheSignals) -> float | None:
        if definition.name == HIT_RATIO_ALERT and (
            signals.request_rate is None or signals.request_rate < self.min_request_rate
        ):
            return None  # an idle cache's hit ratio means nothing
        return signals.signal(definition.signal)

    def _step(
        self, definition: AlertDefinition, subject: str, value: float | None, now: float
    ) -> list[Transition]:
        key = (definition.name, subject)
        state = self._states.get(key)
        held = [t for t in definition.thresholds if _holds(definition, t, value)]
        if state is None:
            if not held:
                return []
            state = self._states[key] = AlertState(definition.name, subject, since=now)
        state.value = value
        for threshold in definition.thresholds:
            if threshold in held:
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

        if state.state in (INACTIVE, RESOLVED):
            if ready is not None:
                state.pending_since = state.firing_since = now
                state.escalated = False
                move(FIRING, ready)
            elif top is not None:
                state.pending_since, state.escalated = now, False
                move(PENDING, top)
        elif state.state == PENDING:
            if ready is not None:
                state.firing_since = now
                move(FIRING, ready)
            elif top is None:
                state.pending_since = None
                move(INACTIVE, None)
            elif top.severity != state.severity:
                state.severity, state.threshold = top.severity, top.value
        elif state.state == FIRING:
            if top is None:
                state.pending_since = state.firing_since = state.escalated_at = None
                move(RESOLVED, None)
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
                    definition.escalates
                    and not state.escalated
                    and state.severity == WARNING
                    and state.firing_since is not None
                    and now - state.firing_since >= self.escalate_after
                ):
                    state.escalated, state.escalated_at = True, now
                    move(ESCALATED, None, CRITICAL)
        state.summary = self._summary(definition, state)
        return made

    @staticmethod
    def _summary(definition: AlertDefinition, state: AlertState) -> str:
        if state.state in (INACTIVE, RESOLVED):
            return f"{definition.signal}={_format(state.value)}"
        relation = ">" if definition.above else "<"
        text = f"{definition.signal}={_format(state.value)} {relation} {_format(state.threshold)}"
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
        within = previous is not None and transition.timestamp - previous[0] < self.notify_cooldown
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
            "definitions": [
                {
                    "alertname": d.name,
                    "summary": d.summary,
                    "signal": d.signal,
                    "unit": d.unit,
                    "fires": "above" if d.above else "below",
                    "thresholds": [asdict(t) for t in d.thresholds],
                    "escalates_after_seconds": self.escalate_after if d.escalates else None,
                }
                for d in self.definitions
            ],
        }

    def collect(self) -> Iterator[Metric]:
        threshold = catalog.ALERT_THRESHOLD.family()
        for definition in self.definitions:
            for t in definition.thresholds:
                threshold.add_metric([definition.name, t.severity], t.value)
        yield threshold
        active = catalog.ALERT_ACTIVE.family()
        by_name = {d.name: d for d in self.definitions}
        for state in sorted(self.states(), key=lambda s: (s.alertname, s.cache)):
            severities = {t.severity for t in by_name[state.alertname].thresholds}
            if by_name[state.alertname].escalates:
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
