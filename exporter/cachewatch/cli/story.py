"""What ``cachewatch demo`` tells while it runs: each phase named as it starts, a live line
of hit ratios over the recent (rate) window with the alerts firing, and at the end a recap
of what fired and resolved."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import units
from ..analysis.alerts import ESCALATED, FIRING, PENDING, RESOLVED, Transition
from ..analysis.engine import Analysis
from ..demo import CYCLE_SECONDS, PHASES, DemoWorkload

LIVE_EVERY = 5.0
"""Seconds between two live lines."""


def _short(cache: str) -> str:
    return cache.removesuffix("_cache")


@dataclass
class Episode:
    """One alert of one cache from firing to resolved."""

    fired: float
    severity: str
    escalated: float | None = None
    resolved: float | None = None


@dataclass
class DemoStory:
    """Reads the workload's phase and the analysis; says what a person watching should see."""

    workload: DemoWorkload
    analysis: Analysis
    clock: Callable[[], float] = time.time
    started: float = field(init=False)
    _phase: str | None = field(init=False, default=None)
    _phases: list[str] = field(init=False, default_factory=list)
    _next_live: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def _at(self, timestamp: float) -> str:
        return units.clock(timestamp - self.started)

    def opening(self) -> list[str]:
        cycle = CYCLE_SECONDS / self.workload.clock.speed
        phases = ", ".join(f"{p.name} {units.duration(p.share * cycle)}" for p in PHASES)
        window = units.duration(self.analysis.settings.alert_rate_window)
        return [
            f"the demo cycles through its phases every {units.duration(cycle)}: {phases}",
            f"live: each cache's hit ratio over the last {window}, and the alerts firing",
        ]

    def lines(self) -> list[str]:
        """What to print now: the phase that just started, and the live line when due."""
        now = self.clock()
        shown: list[str] = []
        phase = self.workload.clock.current()
        if phase.name != self._phase:
            self._phase = phase.name
            self._phases.append(phase.name)
            shown.append(f"{self._at(now):>6} -- phase {phase.name}: {phase.story}")
        if now >= self._next_live and self._sampled():
            self._next_live = now + LIVE_EVERY
            shown.append(self.live_line(now))
        return shown

    def _sampled(self) -> bool:
        """Whether a hit ratio is known yet (it takes two samples)."""
        return any(s.hit_ratio is not None for s in self.analysis.sampler.signals().values())

    def live_line(self, now: float) -> str:
        signals = self.analysis.sampler.signals()
        ratios = "  ".join(
            f"{_short(name)} {units.percent(s.hit_ratio, 0)}" for name, s in sorted(signals.items())
        )
        states = self.analysis.evaluator.states()
        firing = sum(1 for s in states if s.state == FIRING)
        pending = sum(1 for s in states if s.state == PENDING)
        alerts = f"{firing} firing" + (f", {pending} pending" if pending else "")
        phase = self._phase or self.workload.clock.phase()
        return f"{self._at(now):>6} {phase:<7} {ratios}  alerts: {alerts}"

    def episodes(self) -> dict[tuple[str, str], list[Episode]]:
        """Every firing since the start, by alert and cache, from the alert history."""
        found: dict[tuple[str, str], list[Episode]] = {}
        transitions: list[Transition] = self.analysis.evaluator.transitions()
        for t in transitions:
            if t.timestamp < self.started:
                continue
            episodes = found.setdefault((t.alertname, t.cache), [])
            open_episode = episodes[-1] if episodes and episodes[-1].resolved is None else None
            if t.state == FIRING and open_episode is None:
                episodes.append(Episode(t.timestamp, t.severity))
            elif t.state == ESCALATED and open_episode is not None:
                open_episode.escalated = t.timestamp
            elif t.state == RESOLVED and open_episode is not None:
                open_episode.resolved = t.timestamp
        return {key: value for key, value in found.items() if value}

    def recap(self) -> list[str]:
        """What fired and resolved during the run, one line per alert and cache."""
        ran = units.clock(self.clock() - self.started)
        phases = ", ".join(self._phases) or "none"
        episodes = self.episodes()
        lines = [f"recap after {ran} (phases: {phases}):"]
        if not episodes:
            lines.append("  no alert fired")
            return lines
        name_width = max(len(name) for name, _ in episodes)
        cache_width = max(len(cache) for _, cache in episodes)
        fired = resolved = still = 0
        for (name, cache), runs in sorted(episodes.items(), key=lambda kv: kv[1][0].fired):
            parts = []
            for run in runs:
                text = f"fired {self._at(run.fired)} ({run.severity})"
                if run.escalated is not None:
                    text += f", escalated to critical {self._at(run.escalated)}"
                text += (
                    f", resolved {self._at(run.resolved)}"
                    if run.resolved is not None
                    else ", still firing"
                )
                parts.append(text)
                fired += 1
                resolved += run.resolved is not None
                still += run.resolved is None
            lines.append(f"  {name:<{name_width}}  {cache:<{cache_width}}  {'; '.join(parts)}")
        lines.append(
            f"{fired} fired, {resolved} resolved, {still} still firing at the end; "
            "every transition: /alerts"
        )
        return lines
