"""The per-cache report and its recommendations, each naming the numbers behind it.

The report is what ``/report`` serves and ``cachewatch report`` prints: every cache's
activity, trends, forecast and alert states, plus recommendations derived from the same
signals and thresholds the alerts use.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from ..config.settings import AlertSettings, AnalysisSettings
from ..units import duration, percent, size
from .alerts import FIRING, INACTIVE
from .sampler import Sampler
from .signals import CacheSignals


@dataclass(frozen=True)
class Recommendation:
    """One piece of advice: what to do, why, and the evidence that triggered it."""

    kind: str
    message: str
    evidence: dict[str, float]


def _window_error_ratio(s: CacheSignals) -> float | None:
    inc = s.window_increase
    operations = sum(inc.get(k, 0.0) for k in ("hits", "misses", "puts", "removals"))
    return inc.get("errors", 0.0) / operations if operations > 0 else None


def recommendations(s: CacheSignals, config: AlertSettings) -> list[Recommendation]:
    """What the signals of one cache suggest, with the numbers that triggered each item."""
    found: list[Recommendation] = []
    window = duration(config.alert_rate_window)
    busy = s.request_rate is not None and s.request_rate >= config.hit_ratio_min_request_rate
    if busy and s.hit_ratio is not None and s.hit_ratio < config.hit_ratio_warning:
        assert s.request_rate is not None
        per_put = s.eviction_ratio or 0.0
        evidence = {
            "hit_ratio": round(s.hit_ratio, 4),
            "evictions_per_put": round(per_put, 4),
            "requests_per_second": round(s.request_rate, 3),
        }
        if per_put >= config.eviction_ratio_warning:
            limit = ""
            if s.snapshot.max_entries:
                limit = f" (now {s.snapshot.max_entries} entries)"
                evidence["max_entries"] = s.snapshot.max_entries
            found.append(
                Recommendation(
                    "capacity_too_small",
                    f"hit ratio {percent(s.hit_ratio)} with {per_put:.2f} evictions per put over "
                    f"the last {window}: entries are evicted before they are reused; raise the "
                    f"cache's capacity{limit} or memory limit.",
                    evidence,
                )
            )
        else:
            puts = s.window_increase.get("puts", 0.0)
            expirations = s.window_increase.get("expirations", 0.0)
            expired_per_put = expirations / puts if puts else 0.0
            evidence["expirations_per_put"] = round(expired_per_put, 4)
            intro = (
                f"hit ratio {percent(s.hit_ratio)} with only {per_put:.2f} evictions per put "
                f"over the last {window}: capacity is not the problem; "
            )
            if expired_per_put >= config.eviction_ratio_warning:
                found.append(
                    Recommendation(
                        "ttl_too_short",
                        intro + f"entries expire before they are reused ({expired_per_put:.2f} "
                        "expirations per put): lengthen the TTL if the data may be that old, "
                        "or check whether the keys repeat at all.",
                        evidence,
                    )
                )
            else:
                # A cache without a TTL (or whose entries rarely expire) gets no TTL advice.
                found.append(
                    Recommendation(
                        "keys_rarely_repeat",
                        intro + f"few entries expire ({expired_per_put:.2f} per put), so the "
                        "keys rarely repeat: check the key design (timestamps or request ids in "
                        "keys) and whether this data is worth caching.",
                        evidence,
                    )
                )
    if (
        s.memory_full_seconds is not None
        and s.memory_full_seconds < config.memory_full_soon_seconds
        and s.memory_growth_bytes_per_second
    ):
        growth = s.memory_growth_bytes_per_second
        found.append(
            Recommendation(
                "memory_full_soon",
                f"memory {size(s.snapshot.memory_bytes or 0)} of "
                f"{size(s.snapshot.memory_limit_bytes or 0)} grows {size(growth)}/s: the "
                f"limit is reached in {duration(s.memory_full_seconds)}; raise the limit, "
                "bound the entries' size, or shorten their TTL.",
                {
                    "memory_full_seconds": round(s.memory_full_seconds, 1),
                    "memory_bytes": s.snapshot.memory_bytes or 0.0,
                    "memory_limit_bytes": s.snapshot.memory_limit_bytes or 0.0,
                    "memory_growth_bytes_per_second": round(growth, 3),
                },
            )
        )
    window_errors = _window_error_ratio(s)
    if s.error_ratio is not None and s.error_ratio > 0:
        rising = window_errors is not None and s.error_ratio > 2 * window_errors
        if s.error_ratio >= config.error_ratio_warning or (rising and s.error_ratio >= 0.01):
            top = max(s.snapshot.errors.items(), key=lambda kv: kv[1], default=None)
            cause = f"; most: {top[0][0]} {top[0][1]} ({top[1]} in total)" if top else ""
            found.append(
                Recommendation(
                    "errors_rising",
                    f"{percent(s.error_ratio)} of operations failed over the last {window} "
                    f"against {percent(window_errors or 0.0)} over the trend window{cause}: "
                    "check the backend or connection behind the cache.",
                    {
                        "error_ratio": round(s.error_ratio, 4),
                        "trend_window_error_ratio": round(window_errors or 0.0, 4),
                    },
                )
            )
    if (
        s.cleanup_overdue_factor is not None
        and s.cleanup_overdue_factor >= config.cleanup_stalled_factor
        and s.seconds_since_cleanup is not None
        and s.usual_cleanup_interval_seconds is not None
    ):
        found.append(
            Recommendation(
                "cleanup_stalled",
                f"no cleanup for {duration(s.seconds_since_cleanup)}, "
                f"{s.cleanup_overdue_factor:.1f}x the usual interval of "
                f"{duration(s.usual_cleanup_interval_seconds)}: check the janitor job or "
                "thread that cleans this cache.",
                {
                    "seconds_since_cleanup": round(s.seconds_since_cleanup, 1),
                    "usual_interval_seconds": round(s.usual_cleanup_interval_seconds, 1),
                    "overdue_factor": round(s.cleanup_overdue_factor, 2),
                },
            )
        )
    return found


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


HISTORY_POINTS = 60
"""Most points of each series in the report (the status page's sparklines)."""


def _thin(series: list[tuple[float, float]], digits: int) -> list[list[float]]:
    """At most ``HISTORY_POINTS`` evenly spaced points of ``series``, the newest kept."""
    if len(series) > HISTORY_POINTS:
        step = (len(series) - 1) / (HISTORY_POINTS - 1)
        series = [series[round(i * step)] for i in range(HISTORY_POINTS)]
    return [[round(t, 3), round(v, digits)] for t, v in series]


def cache_report(s: CacheSignals, sampler: Sampler, config: AnalysisSettings) -> dict[str, Any]:
    snap = s.snapshot
    history = sampler.history(s.cache)
    status, reasons = sampler.evaluator.cache_status(s.cache)
    alerts = [
        {
            "alertname": a.alertname,
            "state": a.state,
            "severity": a.severity,
            "escalated": a.escalated,
            "summary": a.summary,
        }
        for a in sampler.evaluator.states()
        if a.cache == s.cache and a.state != INACTIVE
    ]
    alerts.sort(key=lambda a: (a["state"] != FIRING, str(a["alertname"])))
    return {
        "cache": s.cache,
        "source": s.source,
        "status": status,
        "reasons": reasons,
        "requests": {
            "gets": snap.gets,
            "hits": snap.hits,
            "misses": snap.misses,
            "puts": snap.puts,
            "removals": snap.removals,
            "per_second": _round(s.request_rate, 3),
        },
        "hit_ratio": {
            "recent": _round(s.hit_ratio, 4),
            "trend_window": _round(s.trend_hit_ratio, 4),
        },
        "latency_p99_seconds": {op: round(v, 9) for op, v in s.latency_p99_by_operation.items()},
        "errors": {
            "total": snap.error_count,
            "ratio": _round(s.error_ratio, 4),
            "by_operation": {f"{op}/{err}": n for (op, err), n in sorted(snap.errors.items())},
        },
        "entries": {"size": snap.size, "max_entries": snap.max_entries},
        "memory": {
            "bytes": snap.memory_bytes,
            "limit_bytes": snap.memory_limit_bytes,
            "limit_ratio": _round(s.memory_limit_ratio, 4),
        },
        "evictions": {"total": snap.evictions, "per_put": _round(s.eviction_ratio, 4)},
        "expirations": {"total": snap.expirations},
        "cleanups": {
            "total": sum(snap.cleanups.values()),
            "per_hour": _round(s.cleanups_per_hour, 2) if snap.cleanups else None,
            "seconds_since_last": _round(s.seconds_since_cleanup, 1),
            "usual_interval_seconds": _round(s.usual_cleanup_interval_seconds, 1),
        },
        "trends": {
            "memory_growth_bytes_per_second": _round(s.memory_growth_bytes_per_second, 3),
            "size_growth_per_second": _round(s.size_growth_per_second, 4),
            "hit_ratio_points_per_hour": _round(
                None if s.hit_ratio_change_per_hour is None else 100 * s.hit_ratio_change_per_hour,
                2,
            ),
        },
        "forecast": {"memory_full_seconds": _round(s.memory_full_seconds, 1)},
        "alerts": alerts,
        "alert_statistics": sampler.evaluator.statistics.records(s.cache),
        "recommendations": [asdict(r) for r in recommendations(s, config)],
        "history": {
            "hit_ratio": _thin(history.get("hit_ratio", []), 4),
            "memory_bytes": _thin(history.get("memory_bytes", []), 0),
        },
    }


def _known_caches(sampler: Sampler) -> dict[str, CacheSignals]:
    """The sampled caches, and those the last poll found that no sample has seen yet (a cache
    made after the last sample): shown from the first scrape, with what is known of them."""
    found = sampler.signals()
    for snapshot in sampler.poller.latest():
        for cache in snapshot.caches if snapshot.up else ():
            if cache.name not in found:
                at = snapshot.timestamp
                found[cache.name] = CacheSignals(cache.name, cache.source, at, cache)
    return found


def build_report(sampler: Sampler, config: AnalysisSettings) -> dict[str, Any]:
    """The whole report: sources, memory, and every cache seen within the trend window or by
    the last poll."""
    if sampler.last_sample is None:
        sampler.sample()
    usage = sampler.memory()
    return {
        "generated_at": time.time(),
        "last_sample_timestamp": sampler.last_sample,
        "settings": {
            "sample_interval_seconds": config.sample_interval,
            "trend_window_seconds": config.trend_window,
            "rate_window_seconds": config.alert_rate_window,
        },
        "sources": [
            {"source": name, "up": snap.up, "error": snap.error}
            for name, snap in sorted(sampler.sources().items())
        ],
        "memory": None
        if usage is None
        else {
            "process_rss_bytes": usage.process_rss_bytes,
            "host_total_bytes": usage.host_total_bytes,
            "host_available_bytes": usage.host_available_bytes,
            "cache_bytes": usage.cache_bytes,
            "in_process_cache_share": _round(usage.process_share),
            "host_cache_share": _round(usage.host_share),
        },
        "caches": [
            cache_report(s, sampler, config) for _, s in sorted(_known_caches(sampler).items())
        ],
        "firing_alerts": len(sampler.evaluator.firing()),
        "alert_statistics": sampler.evaluator.statistics.records(),
    }
