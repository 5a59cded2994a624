"""Grafana dashboards from the catalogue and thresholds.

Five dashboards: Cache fleet (the worst caches across every service, ``fleet_dashboard.py``),
Cache overview (every cache), Cache detail (one cache, per instance too), Redis server
(redis_exporter's names) and cachewatch itself. Panels read the recording rules where one
exists, so a dashboard shows exactly what the alerts evaluate; threshold lines come from the
configured thresholds and from ``cachewatch_alert_threshold``. Every query is filtered by the
template variables (``grafana.py``).
"""

from __future__ import annotations

import itertools
from typing import Any

from .. import catalog as c
from ..analysis.definitions import CRITICAL, AlertDefinition, alert_definitions
from ..config.settings import BundleSettings
from . import promql as q
from .fleet_dashboard import fleet_dashboard
from .grafana import RATE, Panel, Scope, Target, dashboard, variables
from .rules import EXPORTER_JOBS

CACHE_SERIES = f'{{__name__=~"{c.CACHE_GETS.name}|{c.CACHE_SIZE.name}"}}'
"""Where the cache dashboards' variables find their values: every cache has one of these."""


def _threshold_steps(d: AlertDefinition) -> list[tuple[float | None, str]]:
    """Colour steps for an alert's thresholds: green on the good side, then yellow, red."""
    colours = {"warning": "yellow", CRITICAL: "red"}
    ordered = sorted(d.thresholds, key=lambda t: t.value, reverse=not d.above)
    if d.above:
        return [(None, "green"), *((t.value, colours[t.severity]) for t in ordered)]
    # Below-thresholds: red below critical, yellow below warning, green above.
    steps: list[tuple[float | None, str]] = []
    bad = sorted(d.thresholds, key=lambda t: t.value)
    steps.append((None, colours[bad[0].severity]))
    for lower, upper in itertools.pairwise(bad):
        steps.append((lower.value, colours[upper.severity]))
    steps.append((bad[-1].value, "green"))
    return steps


def _alert_threshold(name: str, scope: Scope) -> Target:
    """The thresholds in force, from the exporters: the default of every cache, and the own
    threshold of each chosen cache that has one (named in the legend)."""
    labels = scope.group_labels
    matchers = [f'alertname="{name}"', *(f'{n}=~"${n}"' for n in (*labels, "instance"))]
    if scope.cache:
        matchers.append('cache=~"$cache|"')  # the chosen caches', and the default ("")
    return Target(
        f"max by (cache, severity) ({c.ALERT_THRESHOLD.name}{{{','.join(matchers)}}})",
        "{{severity}} threshold {{cache}}",
    )


def cache_panels(config: BundleSettings, scope: Scope, per_instance: bool) -> list[Panel]:
    """Per-cache panels over the caches the variables choose; ``per_instance`` adds the
    replicas side by side (the Cache detail dashboard)."""
    d = {a.name: a for a in alert_definitions(config)}
    v = q.vocabulary(config)
    s, p = scope.service(), scope.process()
    who = f"{scope.legend} {{{{cache}}}}"
    where = f"{scope.legend} {{{{instance}}}} {{{{cache}}}}"

    def legend(text: str) -> str:
        return f"{who} {text}"

    def each(text: str) -> str:
        return f"{where} {text}"

    service = v.SERVICE
    link = scope.detail_link("__field.labels.{}")
    bucket = f"{c.OPERATION_DURATION.name}_bucket"
    replicas = (
        " Per service, over all its replicas (the instance variable does not apply: see the "
        "per-instance panels of Cache detail)."
    )
    panels = [
        Panel(
            "Hit ratio",
            f"Share of lookups answered from the cache over {v.window}. Below the yellow line "
            "CacheHitRatioLow warns, below the red line it is critical (only while the cache "
            "serves enough lookups). A falling ratio with rising evictions means the cache is "
            "too small; with few evictions, TTLs too short or keys that never repeat." + replicas,
            [
                Target(f"{v.HIT_RATIO}{s}", legend("hit ratio")),
                _alert_threshold("CacheHitRatioLow", scope),
            ],
            "percentunit",
            thresholds=_threshold_steps(d["CacheHitRatioLow"]),
            min=0,
            max=1,
            link=link,
        ),
        Panel(
            "Request rate",
            "Lookups per second (hits and misses). The hit-ratio alert ignores caches below "
            f"{config.hit_ratio_min_request_rate:g} lookups/s." + replicas,
            [
                Target(f"{v.REQUESTS}{s}", legend("lookups/s")),
                Target(f"{v.HITS}{s}", legend("hits/s")),
            ],
            "reqps",
            min=0,
            link=link,
        ),
    ]
    if per_instance:
        panels += _instance_panels(scope, each)
    panels += [
        Panel(
            "Operation latency p50 / p95 / p99",
            f"Latency quantiles per operation over {v.window}; dots are exemplars linked to "
            "traces in Jaeger. The p99 above the yellow line is CacheLatencyHigh.",
            [
                Target(f"{v.latency_quantile(0.5)}{s}", legend("{{operation}} p50")),
                Target(f"{v.latency_quantile(0.95)}{s}", legend("{{operation}} p95")),
                Target(
                    f"histogram_quantile(0.99, sum by ({v.by('operation', 'le')}) "
                    f"(rate({bucket}{p}[{RATE}])))",
                    legend("{{operation}} p99"),
                    exemplar=True,
                ),
                _alert_threshold("CacheLatencyHigh", scope),
            ],
            "s",
            thresholds=_threshold_steps(d["CacheLatencyHigh"]),
            min=0,
            link=link,
        ),
        Panel(
            "Error ratio",
            f"Failed operations per operation (gets, puts, removals) over {v.window}. Above the "
            "yellow line CacheErrorRateHigh warns, above the red line it is critical." + replicas,
            [
                Target(f"{v.ERROR_RATIO}{s}", legend("errors")),
                _alert_threshold("CacheErrorRateHigh", scope),
            ],
            "percentunit",
            thresholds=_threshold_steps(d["CacheErrorRateHigh"]),
            min=0,
            link=link,
        ),
        Panel(
            "Errors by operation and exception",
            "Failed operations per second by exception class: which operation fails and why.",
            [
                Target(
                    f"sum by ({v.by('operation', 'error')}) (rate({c.ERRORS.name}{p}[{RATE}]))",
                    legend("{{operation}} {{error}}"),
                )
            ],
            "ops",
            min=0,
            link=link,
        ),
        Panel(
            "Entries",
            "Entries in the cache and its configured entry limit, where it has one, per "
            "instance. A cache pinned at its limit evicts on every put.",
            [
                Target(f"{c.CACHE_SIZE.name}{p}", each("entries")),
                Target(f"{c.MAX_ENTRIES.name}{p}", each("entry limit")),
            ],
            "short",
            min=0,
        ),
        Panel(
            "Memory against its limit",
            "Memory held by the cache in each instance (estimated from samples for in-process "
            "caches) and its configured limit. CacheMemoryHigh fires above the fixed "
            "thresholds, CacheMemoryNearLimit near the limit.",
            [
                Target(f"{c.MEMORY.name}{p}", each("memory")),
                Target(f"{c.MEMORY_LIMIT.name}{p}", each("limit")),
                _alert_threshold("CacheMemoryHigh", scope),
            ],
            "bytes",
            thresholds=_threshold_steps(d["CacheMemoryHigh"]),
            min=0,
        ),
        Panel(
            "Memory share of limit",
            "Memory as a share of the cache's limit, per instance; above the line is "
            "CacheMemoryNearLimit.",
            [Target(f"{v.MEMORY_LIMIT_RATIO}{p}", each("of limit"))],
            "percentunit",
            thresholds=_threshold_steps(d["CacheMemoryNearLimit"]),
            min=0,
            max=1,
        ),
        Panel(
            "Evictions, expirations, puts, removals",
            "Entries leaving the cache per second: evicted for capacity, expired by TTL, "
            "deleted explicitly; and entries written.",
            [
                Target(
                    f"sum by ({service}) (rate({metric}{p}[{RATE}]))",
                    legend(text),
                )
                for metric, text in (
                    (c.CACHE_EVICTIONS.name, "evicted/s"),
                    (c.EXPIRATIONS.name, "expired/s"),
                    (c.CACHE_PUTS.name, "puts/s"),
                    (c.CACHE_REMOVALS.name, "removed/s"),
                )
            ],
            "ops",
            min=0,
            link=link,
        ),
        Panel(
            "Evictions per put",
            f"Evictions per entry written over {v.window}; above the line is "
            "CacheEvictionRateHigh: the cache is too small for its working set." + replicas,
            [
                Target(f"{v.EVICTION_RATIO}{s}", legend("evictions per put")),
                _alert_threshold("CacheEvictionRateHigh", scope),
            ],
            "percentunit",
            thresholds=_threshold_steps(d["CacheEvictionRateHigh"]),
            min=0,
            link=link,
        ),
        Panel(
            "Cleanups",
            "Cleanup runs per second by trigger, entries they removed, and time since the "
            "last run. CacheCleanupStalled fires when the last run is overdue.",
            [
                Target(
                    f"sum by ({v.by('trigger')}) (rate({c.CLEANUPS.name}{p}[{RATE}]))",
                    legend("runs/s {{trigger}}"),
                ),
                Target(
                    f"sum by ({service}) (rate({c.CLEANUP_REMOVED.name}{p}[{RATE}]))",
                    legend("removed/s"),
                ),
            ],
            "ops",
            min=0,
            link=link,
        ),
        Panel(
            "Cleanup overdue",
            "Time since the service's last cleanup divided by its usual interval between "
            "cleanups (over 6h); above the line is CacheCleanupStalled. Below: seconds since "
            "each instance's last cleanup.",
            [
                Target(f"{v.CLEANUP_OVERDUE}{s}", legend("overdue factor")),
                Target(f"time() - {c.LAST_CLEANUP.name}{p}", each("seconds since last")),
            ],
            "short",
            thresholds=_threshold_steps(d["CacheCleanupStalled"]),
            min=0,
        ),
        Panel(
            "Hit ratio trend (exporter)",
            "Each instance's hit ratio over its trend window and its least-squares change per "
            "hour: a steadily negative slope warns before the alert does.",
            [
                Target(f"{c.HIT_RATIO.name}{p}", each("window hit ratio")),
                Target(f"{c.HIT_RATIO_CHANGE.name}{p}", each("change/h")),
            ],
            "percentunit",
            kind="stat",
        ),
        Panel(
            "Growth and forecast",
            "Least-squares growth of memory and entries over the trend window, and the "
            "forecast time until the memory limit, per instance (shown only while memory "
            "grows toward a limit; below the memory-full-soon threshold CacheMemoryFullSoon "
            "fires).",
            [
                Target(f"{c.MEMORY_GROWTH.name}{p}", each("memory growth")),
                Target(f"{c.SIZE_GROWTH.name}{p}", each("entries/s"), unit="short"),
                Target(f"{c.MEMORY_FULL.name}{p}", each("full in"), unit="s"),
            ],
            "Bps",
            kind="stat",
        ),
        Panel(
            "Alert states",
            "Alerts the exporter evaluates itself in each instance (1 = firing) and, below, "
            "the alerts Prometheus fires from the rules (pending or firing).",
            [
                Target(
                    f"max by ({v.PROCESS}, alertname, severity) ({c.ALERT_ACTIVE.name}{p})",
                    f"{{{{alertname}}}} {where} {{{{severity}}}}",
                ),
                Target(
                    "ALERTS" + scope.service('alertname=~"Cache.*"'),
                    f"rule: {{{{alertname}}}} {who} {{{{severity}}}} {{{{alertstate}}}}",
                ),
            ],
            "short",
            min=0,
            width=24,
        ),
    ]
    return panels


def _instance_panels(scope: Scope, each: Any) -> list[Panel]:
    """The replicas of the chosen services side by side, from the raw counters: a replica
    whose hit ratio or traffic differs from its siblings (cold after a restart, a bad key
    distribution, an unbalanced load balancer)."""
    gets, p = c.CACHE_GETS.name, scope.process()
    hits = scope.process('result="hit"')
    by = ", ".join((*scope.group_labels, "instance", "cache"))
    return [
        Panel(
            "Hit ratio per instance",
            "Each replica's share of lookups answered from the cache: a replica far below its "
            "siblings is cold or sees other keys. The alert reads the service's ratio (above).",
            [
                Target(
                    f"sum by ({by}) (rate({gets}{hits}[{RATE}])) / "
                    f"(sum by ({by}) (rate({gets}{p}[{RATE}])) > 0)",
                    each("hit ratio"),
                )
            ],
            "percentunit",
            min=0,
            max=1,
        ),
        Panel(
            "Request rate per instance",
            "Lookups per second in each replica: how the load balancer spreads the traffic.",
            [Target(f"sum by ({by}) (rate({gets}{p}[{RATE}]))", each("lookups/s"))],
            "reqps",
            min=0,
        ),
    ]


def redis_panels(scope: Scope) -> list[Panel]:
    i = scope.process()
    inst = f"{scope.legend} {{{{instance}}}}"
    return [
        Panel(
            "Up",
            "1 when the exporter can read the Redis server (RedisDown fires on 0).",
            [Target(f"redis_up{i}", inst)],
            "short",
            kind="stat",
            thresholds=[(None, "red"), (1, "green")],
            width=6,
        ),
        Panel(
            "Memory used against maxmemory",
            "Memory Redis uses and its maxmemory (0: no limit). RedisMemoryNearMax fires "
            "above 90% of maxmemory.",
            [
                Target(f"redis_memory_used_bytes{i}", inst + " used"),
                Target(f"redis_memory_max_bytes{i}", inst + " maxmemory"),
            ],
            "bytes",
            min=0,
            width=18,
        ),
        Panel(
            "Memory fragmentation",
            "RSS divided by used memory; above 1.5 memory is "
            "fragmented, below 1 Redis is swapping.",
            [Target(f"redis_mem_fragmentation_ratio{i}", inst)],
            "short",
            thresholds=[(None, "red"), (1, "green"), (1.5, "yellow")],
        ),
        Panel(
            "Clients",
            "Connected and blocked clients; rejected connections mean "
            "maxclients was reached (RedisRejectedConnections).",
            [
                Target(f"redis_connected_clients{i}", inst + " connected"),
                Target(f"redis_blocked_clients{i}", inst + " blocked"),
                Target(
                    f"rate(redis_rejected_connections_total{i}[{RATE}])",
                    inst + " rejected/s",
                ),
            ],
            "short",
            min=0,
        ),
        Panel(
            "Commands per second",
            "Commands processed per second.",
            [
                Target(
                    f"rate(redis_commands_processed_total{i}[{RATE}])",
                    inst,
                )
            ],
            "ops",
            min=0,
        ),
        Panel(
            "Keyspace hit ratio",
            "Server-wide share of key lookups that found the key.",
            [
                Target(
                    f"rate(redis_keyspace_hits_total{i}[{RATE}]) / (rate("
                    f"redis_keyspace_hits_total{i}[{RATE}]) + rate(redis_keyspace_misses_total"
                    f"{i}[{RATE}]))",
                    inst,
                )
            ],
            "percentunit",
            min=0,
            max=1,
        ),
        Panel(
            "Keys per database",
            "Keys and keys with a TTL, per database.",
            [
                Target(f"redis_db_keys{i}", inst + " {{db}} keys"),
                Target(
                    f"redis_db_keys_expiring{i}",
                    inst + " {{db}} expiring",
                ),
            ],
            "short",
            min=0,
        ),
        Panel(
            "Evictions and expirations",
            "Keys evicted for maxmemory and keys expired by "
            "TTL, per second. Evictions mean Redis is full.",
            [
                Target(
                    f"rate(redis_evicted_keys_total{i}[{RATE}])",
                    inst + " evicted/s",
                ),
                Target(
                    f"rate(redis_expired_keys_total{i}[{RATE}])",
                    inst + " expired/s",
                ),
            ],
            "ops",
            min=0,
        ),
        *topology_panels(scope),
    ]


def topology_panels(scope: Scope) -> list[Panel]:
    """Roles, replication lag and cluster slots: Redis as deployed (replicas, Sentinel,
    Cluster), from redis_exporter's series of each node."""
    i = scope.process()
    inst = f"{scope.legend} {{{{instance}}}}"
    info = c.REDIS_INSTANCE_INFO.name
    slots = {k: c.cluster_info_metric(f"redis_cluster_slots_{k}") for k in ("ok", "pfail", "fail")}
    assigned = c.cluster_info_metric("redis_cluster_slots_assigned")
    return [
        Panel(
            "Roles",
            "Each node's role now (master or replica) and the master a replica follows; a "
            "failover shows as a role changing. Sentinel mode: the master the exporter follows.",
            [
                Target(
                    f"max by (instance, role, redis_mode) ({info}{i})",
                    inst + " {{role}}",
                    instant=True,
                    table=True,
                ),
                Target(
                    f"{c.REDIS_SLAVE_INFO.name}{i}",
                    inst + " follows {{master_host}}",
                    instant=True,
                    table=True,
                ),
            ],
            kind="table",
            width=12,
        ),
        Panel(
            "Replication lag",
            "Seconds since each replica acknowledged its offset, as its master reports it "
            "(RedisReplicaLagHigh), and how far each replica's offset is behind its "
            "master's, in bytes (right axis).",
            [
                Target(
                    f"{c.REDIS_CONNECTED_SLAVE_LAG.name}{i}",
                    inst + " → {{slave_ip}}:{{slave_port}}",
                ),
                Target(
                    f"{c.info_metric('redis_master_repl_offset')}{i} - on (instance) "
                    f"group_right {c.REDIS_CONNECTED_SLAVE_OFFSET.name}{i}",
                    inst + " → {{slave_ip}}:{{slave_port}} bytes behind",
                    unit="bytes",
                ),
            ],
            "s",
            min=0,
            width=12,
        ),
        Panel(
            "Cluster slots",
            "Slots of the cluster as each node sees them: ok, PFAIL (this node thinks their "
            "master is failing) and FAIL (the cluster agrees) (RedisClusterSlotsFailing), "
            "against the slots assigned; the cluster state (RedisClusterStateNotOk) is 1 "
            "when ok.",
            [
                Target(f"{slots['ok']}{i}", inst + " ok"),
                Target(f"{slots['pfail']}{i}", inst + " pfail"),
                Target(f"{slots['fail']}{i}", inst + " fail"),
                Target(f"{assigned}{i}", inst + " assigned"),
                Target(f"{c.cluster_info_metric('redis_cluster_state')}{i}", inst + " state ok"),
            ],
            "short",
            min=0,
            width=24,
        ),
    ]


def self_panels(scope: Scope) -> list[Panel]:
    j = scope.process(f'job=~"{EXPORTER_JOBS}"')
    p = scope.process()
    inst = f"{scope.legend} {{{{instance}}}}"
    return [
        Panel(
            "Scrape target up",
            "1 when Prometheus can scrape the exporter (CachewatchExporterDown fires on 0).",
            [Target(f"up{j}", inst)],
            "short",
            kind="stat",
            thresholds=[(None, "red"), (1, "green")],
            width=8,
        ),
        Panel(
            "Sources up",
            "1 when the last poll of a source (local caches, Redis) worked; "
            "CacheSourceDown fires on 0.",
            [Target(c.SOURCE_UP.name + p, inst + " {{source}}")],
            "short",
            kind="stat",
            thresholds=[(None, "red"), (1, "green")],
            width=8,
        ),
        Panel(
            "Health checks",
            "1 when a health check passes; /health answers 503 otherwise.",
            [Target(c.HEALTH_CHECK_OK.name + p, inst + " {{check}}")],
            "short",
            kind="stat",
            thresholds=[(None, "red"), (1, "green")],
            width=8,
        ),
        Panel(
            "Source poll duration",
            "How long each source took to read on the last "
            "scrape; near the scrape timeout means scrapes will fail.",
            [
                Target(
                    c.SOURCE_POLL_DURATION.name + p,
                    inst + " {{source}}",
                )
            ],
            "s",
            min=0,
        ),
        Panel(
            "Source errors",
            "Failed polls per second, per source.",
            [
                Target(
                    f"rate({c.SOURCE_ERRORS.name}{p}[{RATE}])",
                    inst + " {{source}}",
                )
            ],
            "ops",
            min=0,
        ),
        Panel(
            "Scrape cost",
            "Time Prometheus spends scraping the exporter and the samples "
            "per scrape: the cost of the cache-name cardinality.",
            [
                Target(f"scrape_duration_seconds{j}", inst + " duration"),
                Target(
                    f"scrape_samples_scraped{j}",
                    inst + " samples",
                    unit="short",
                ),
            ],
            "s",
            min=0,
        ),
        Panel(
            "Process memory",
            "Resident memory of the exporter process.",
            [Target(f"process_resident_memory_bytes{j}", inst)],
            "bytes",
            min=0,
        ),
        Panel(
            "Process CPU",
            "CPU seconds per second used by the exporter process.",
            [
                Target(
                    f"rate(process_cpu_seconds_total{j}[{RATE}])",
                    inst,
                )
            ],
            "percentunit",
            min=0,
        ),
        Panel(
            "Cache names folded into other",
            "Cache registrations beyond cache.max-names "
            'counted as cache="other"; raise the limit or fix dynamic cache names.',
            [Target(c.CACHES_DROPPED.name + p, inst)],
            "short",
            kind="stat",
            width=12,
        ),
        Panel(
            "Version",
            "The cachewatch version each instance runs.",
            [
                Target(
                    c.BUILD_INFO.name + p,
                    inst + " {{version}}",
                    instant=True,
                )
            ],
            "short",
            kind="stat",
            width=12,
        ),
    ]


def all_dashboards(config: BundleSettings) -> dict[str, dict[str, Any]]:
    """File stem -> dashboard JSON of every dashboard."""
    caches = Scope(config.group_labels)
    servers = Scope(config.group_labels, cache=False)
    return {
        "cache-fleet": fleet_dashboard(config, caches, variables(caches, CACHE_SERIES)),
        "cache-overview": dashboard(
            "overview",
            "Every cache of the chosen services: hit ratio, traffic, latency, errors, size, "
            "memory, churn, cleanups, trends and alert states.",
            cache_panels(config, caches, per_instance=False),
            variables(caches, CACHE_SERIES),
        ),
        "cache-detail": dashboard(
            "detail",
            "One cache in detail (choose it above), its replicas side by side.",
            cache_panels(config, caches, per_instance=True),
            variables(caches, CACHE_SERIES, cache="single"),
        ),
        "redis-server": dashboard(
            "redis",
            "The Redis server: memory, fragmentation, clients, commands, keyspace, evictions "
            "and expiry (redis_exporter's metric names).",
            redis_panels(servers),
            variables(servers, "redis_up", cache=None),
        ),
        "cachewatch": dashboard(
            "self",
            "The exporter itself: scrape health, sources, poll durations, scrape cost and "
            "process resources.",
            self_panels(servers),
            variables(servers, c.BUILD_INFO.name, cache=None),
        ),
    }
