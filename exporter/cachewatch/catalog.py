"""Every metric cachewatch publishes: the only place where names, types, labels and help live.

Core per-cache metrics keep Micrometer's names so JVM and Python caches share one dashboard;
the rest carry the ``cachewatch_`` prefix. Everything else (collectors, rule and dashboard
generators, tests) refers to these specs instead of spelling a name again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    SummaryMetricFamily,
)

MetricType = Literal["counter", "gauge", "histogram", "summary"]

# Cache operations span ~100 ns (in-process dict) to seconds (a stalled Redis).
LATENCY_BUCKETS: tuple[float, ...] = (
    0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
CLEANUP_BUCKETS: tuple[float, ...] = (
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0,
)  # fmt: skip


@dataclass(frozen=True)
class MetricSpec:
    """One metric: its exposition name, type, unit, label names and help text."""

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...] = ()
    unit: str = ""

    @property
    def family_name(self) -> str:
        """The name prometheus_client wants: counters without their ``_total`` suffix."""
        if self.type == "counter" and self.name.endswith("_total"):
            return self.name[: -len("_total")]
        return self.name

    @property
    def sample_name(self) -> str:
        """The name of the series as Prometheus stores it (counters with ``_total``)."""
        return self.name

    def family(self) -> Any:
        """A new, empty metric family for this spec, with label names preset.

        A copy of one made once: prometheus_client's constructors check the names on every
        call, and a scrape makes ~200 families (Redis's INFO alone ~150), which made building
        empty families cost more than parsing INFO. Typed ``Any`` because the family classes'
        ``add_metric`` signatures differ.
        """
        prototype = self.__dict__.get("_prototype")
        if prototype is None:
            prototype = self.__dict__["_prototype"] = self._new_family()
        family = object.__new__(type(prototype))
        family.__dict__.update(prototype.__dict__)  # names, type, unit, label names: immutable
        family.samples = []
        return family

    def _new_family(self) -> Any:
        labels = list(self.labels)
        if self.type == "counter":
            return CounterMetricFamily(self.family_name, self.help, labels=labels, unit=self.unit)
        if self.type == "gauge":
            return GaugeMetricFamily(self.name, self.help, labels=labels, unit=self.unit)
        if self.type == "summary":
            return SummaryMetricFamily(self.name, self.help, labels=labels, unit=self.unit)
        return HistogramMetricFamily(self.name, self.help, labels=labels, unit=self.unit)


def _c(name: str, help: str, labels: Sequence[str] = (), unit: str = "") -> MetricSpec:
    return MetricSpec(name, "counter", help, tuple(labels), unit)


def _g(name: str, help: str, labels: Sequence[str] = (), unit: str = "") -> MetricSpec:
    return MetricSpec(name, "gauge", help, tuple(labels), unit)


def _h(name: str, help: str, labels: Sequence[str] = (), unit: str = "") -> MetricSpec:
    return MetricSpec(name, "histogram", help, tuple(labels), unit)


def _s(name: str, help: str, labels: Sequence[str] = (), unit: str = "") -> MetricSpec:
    return MetricSpec(name, "summary", help, tuple(labels), unit)


# --- per-cache activity (Micrometer names) ---------------------------------------------------
CACHE_GETS = _c("cache_gets_total", "Cache lookups, by result (hit or miss).", ("cache", "result"))
CACHE_PUTS = _c("cache_puts_total", "Entries written to the cache.", ("cache",))
CACHE_REMOVALS = _c("cache_removals_total", "Entries deleted explicitly.", ("cache",))
CACHE_EVICTIONS = _c(
    "cache_evictions_total", "Entries removed by the cache itself for capacity.", ("cache",)
)
CACHE_SIZE = _g("cache_size", "Entries in the cache now.", ("cache",))

# --- per-cache, cachewatch's own ---------------------------------------------------------------
EXPIRATIONS = _c("cachewatch_cache_expirations_total", "Entries removed by TTL.", ("cache",))
MEMORY = _g(
    "cachewatch_cache_memory_bytes",
    "Memory held by the cache's entries (exact where the source knows it, else estimated "
    "from samples).",
    ("cache",),
    "bytes",
)
MEMORY_LIMIT = _g(
    "cachewatch_cache_memory_limit_bytes", "Configured memory limit of the cache.", ("cache",),
    "bytes",
)  # fmt: skip
MAX_ENTRIES = _g("cachewatch_cache_max_entries", "Configured entry limit of the cache.", ("cache",))
OPERATION_DURATION = _h(
    "cachewatch_cache_operation_duration_seconds",
    "Latency of cache operations (in-process mappings time a sample of operations).",
    ("cache", "operation"),
    "seconds",
)
ERRORS = _c(
    "cachewatch_cache_errors_total",
    "Failed cache operations, by exception class.",
    ("cache", "operation", "error"),
)
CLEANUPS = _c("cachewatch_cache_cleanups_total", "Cleanup runs, by trigger.", ("cache", "trigger"))
CLEANUP_REMOVED = _c(
    "cachewatch_cache_cleanup_removed_entries_total", "Entries removed by cleanups.", ("cache",)
)
CLEANUP_DURATION = _h(
    "cachewatch_cache_cleanup_duration_seconds", "Time spent in cleanup runs.", ("cache",),
    "seconds",
)  # fmt: skip
LAST_CLEANUP = _g(
    "cachewatch_cache_last_cleanup_timestamp_seconds",
    "Unix time of the last cleanup run.",
    ("cache",),
    "seconds",
)

# --- analysis: trends and forecasts ----------------------------------------------------------
HIT_RATIO = _g("cachewatch_cache_hit_ratio", "Hit ratio over the trend window.", ("cache",))
MEMORY_GROWTH = _g(
    "cachewatch_cache_memory_growth_bytes_per_second",
    "Least-squares slope of the cache's memory over the trend window.",
    ("cache",),
    "bytes_per_second",
)
SIZE_GROWTH = _g(
    "cachewatch_cache_size_growth_per_second",
    "Least-squares slope of the cache's entries over the trend window.",
    ("cache",),
)
HIT_RATIO_CHANGE = _g(
    "cachewatch_cache_hit_ratio_change_per_hour",
    "Least-squares slope of the hit ratio over the trend window, per hour.",
    ("cache",),
)
MEMORY_FULL = _g(
    "cachewatch_cache_memory_full_seconds",
    "Forecast time until the cache's memory limit is reached; absent when not growing.",
    ("cache",),
    "seconds",
)

CLEANUPS_PER_HOUR = _g(
    "cachewatch_cache_cleanups_per_hour",
    "Cleanup runs per hour over the trend window.",
    ("cache",),
)
HOST_MEMORY_TOTAL = _g(
    "cachewatch_host_memory_total_bytes", "Physical memory of the host.", (), "bytes"
)
HOST_MEMORY_AVAILABLE = _g(
    "cachewatch_host_memory_available_bytes",
    "Memory of the host available to new allocations without swapping.",
    (),
    "bytes",
)
PROCESS_MEMORY = _g(
    "cachewatch_process_memory_rss_bytes", "Resident memory of the exporting process.", (),
    "bytes",
)  # fmt: skip
CACHES_MEMORY_SHARE = _g(
    "cachewatch_caches_memory_share_ratio",
    'Share of memory held by the watched caches: scope="process" is the in-process caches '
    'against this process\'s resident memory, scope="host" every cache against host memory.',
    ("scope",),
)
LAST_SAMPLE = _g(
    "cachewatch_analysis_last_sample_timestamp_seconds",
    "Unix time of the analysis's last sample of the caches.",
    (),
    "seconds",
)

# --- analysis: alerts and health -------------------------------------------------------------
ALERT_ACTIVE = _g(
    "cachewatch_alert_active",
    "The exporter's own alert state: 1 while the alert fires.",
    ("alertname", "cache", "severity"),
)
ALERT_THRESHOLD = _g(
    "cachewatch_alert_threshold",
    'Alert thresholds in force, in the unit of the alert\'s signal: cache="" is the default '
    "of every cache, a cache name its own threshold; the generated rules compare against these.",
    ("alertname", "severity", "cache"),
)
ALERT_ESCALATION = _g(
    "cachewatch_alert_escalation_enabled",
    "1 when a warning of the alert still firing after alerts.escalate-after is escalated to "
    'critical, 0 when not: cache="" is the default of every cache, a cache name its own.',
    ("alertname", "cache"),
)
ALERT_TRANSITIONS = _c(
    "cachewatch_alert_transitions_total",
    "Alert state transitions.",
    ("alertname", "severity", "state"),
)
# --- analysis: alert statistics since the process started, per alert and cache ----------------
ALERT_FIRED = _c(
    "cachewatch_alert_fired_total",
    "Times the alert started firing (a change of severity while firing does not count).",
    ("alertname", "cache"),
)
ALERT_FIRING_SECONDS = _c(
    "cachewatch_alert_firing_seconds_total",
    "Time spent firing, the current firing included.",
    ("alertname", "cache"),
    "seconds",
)
ALERT_TIME_TO_RESOLVE = _s(
    "cachewatch_alert_time_to_resolve_seconds",
    "Time from firing to resolved of each resolved firing (sum / count is the mean).",
    ("alertname", "cache"),
    "seconds",
)
ALERT_LAST_FIRED = _g(
    "cachewatch_alert_last_fired_timestamp_seconds",
    "Unix time the alert last started firing.",
    ("alertname", "cache"),
    "seconds",
)
ALERT_LAST_RESOLVED = _g(
    "cachewatch_alert_last_resolved_timestamp_seconds",
    "Unix time the alert last resolved.",
    ("alertname", "cache"),
    "seconds",
)
HEALTH_CHECK_OK = _g("cachewatch_health_check_ok", "1 when the health check passes.", ("check",))

# --- the exporter itself ---------------------------------------------------------------------
SOURCE_UP = _g("cachewatch_source_up", "1 when the last poll of the source worked.", ("source",))
SOURCE_POLL_DURATION = _g(
    "cachewatch_source_poll_duration_seconds", "Duration of the source's last poll.",
    ("source",), "seconds",
)  # fmt: skip
SOURCE_ERRORS = _c("cachewatch_source_errors_total", "Failed polls of the source.", ("source",))
CACHES_DROPPED = _c(
    "cachewatch_cache_names_dropped_total",
    'Cache registrations folded into cache="other" because the cache-name limit was reached.',
)
BUILD_INFO = _g("cachewatch_build_info", "Always 1; the version that runs.", ("version",))

# --- multi-process mode: the aggregate of the processes' files ------------------------------
MULTIPROCESS_PROCESSES = _g(
    "cachewatch_multiprocess_processes",
    "Processes whose files make the aggregate, by state: live ones count toward entries and "
    "memory; dead ones (not yet archived) toward counters only.",
    ("state",),
)
MULTIPROCESS_FILE_ERRORS = _c(
    "cachewatch_multiprocess_file_errors_total",
    "Files of the multi-process directory skipped because they were unreadable, truncated, "
    "corrupt or of another format (the file's last good reading is used, if any).",
    ("reason",),
)
MULTIPROCESS_ARCHIVED = _c(
    "cachewatch_multiprocess_archived_processes_total",
    "Dead processes whose counters this process merged into the directory's archive file.",
)

# --- Redis server: oliver006/redis_exporter's names and meanings ------------------------------
# So that community dashboards and alert rules work unchanged. Where redis_exporter publishes a
# counter without the ``_total`` suffix, the series is a gauge here (same sample name). The
# Redis 7 eviction and expiry health fields are published in base units (seconds, ratios).
# Five names differ so that ``promtool check metrics`` passes: redis_exporter's ``*_sec``
# durations are ``*_seconds`` here, and its gauge ``redis_migrate_cached_sockets_total`` is
# ``redis_migrate_cached_sockets`` (see REDIS_EXPORTER_RENAMED).


@dataclass(frozen=True)
class InfoField:
    """One numeric INFO field and the metric it feeds; ``scale`` converts to base units."""

    field: str
    spec: MetricSpec
    scale: float = 1.0


def _rg(field: str, name: str, help: str, scale: float = 1.0) -> InfoField:
    return InfoField(field, _g(name, help), scale)


def _rc(field: str, name: str, help: str, scale: float = 1.0) -> InfoField:
    return InfoField(field, _c(name, help), scale)


REDIS_UP = _g("redis_up", "1 when the last poll of Redis worked.")
REDIS_INSTANCE_INFO = _g(
    "redis_instance_info",
    "Information about the Redis instance; always 1.",
    ("role", "redis_version", "redis_build_id", "redis_mode", "os", "maxmemory_policy",
     "tcp_port", "run_id", "process_id", "master_replid"),
)  # fmt: skip
REDIS_INSTANCE_INFO_VALKEY_LABELS = ("valkey_version", "valkey_release_stage")
"""Labels redis_instance_info gains on Valkey (after the others), as redis_exporter adds them."""
REDIS_START_TIME = _g(
    "redis_start_time_seconds", "Start time of the Redis instance since unix epoch in seconds."
)
REDIS_DB_KEYS = _g("redis_db_keys", "Total number of keys by DB.", ("db",))
REDIS_DB_KEYS_EXPIRING = _g(
    "redis_db_keys_expiring", "Total number of expiring keys by DB.", ("db",)
)
REDIS_DB_KEYS_CACHED = _g(
    "redis_db_keys_cached", "Keys cached in memory by DB (KeyDB with FLASH storage).", ("db",)
)
REDIS_DB_AVG_TTL = _g("redis_db_avg_ttl_seconds", "Avg TTL in seconds.", ("db",))
REDIS_COMMANDS = _c("redis_commands_total", "Total number of calls per command.", ("cmd",))
REDIS_COMMANDS_DURATION = _c(
    "redis_commands_duration_seconds_total",
    "Total amount of time in seconds spent per command.",
    ("cmd",),
)
REDIS_COMMANDS_REJECTED = _c(
    "redis_commands_rejected_calls_total",
    "Total number of errors prior command execution per command.",
    ("cmd",),
)  # fmt: skip
REDIS_COMMANDS_FAILED = _c(
    "redis_commands_failed_calls_total",
    "Total number of errors within command execution per command.",
    ("cmd",),
)  # fmt: skip
REDIS_ERRORS = _c("redis_errors_total", "Total number of errors per error type.", ("err",))
REDIS_CONFIG_MAXMEMORY = _g("redis_config_maxmemory", "maxmemory as read by CONFIG GET.")
REDIS_CONFIG_IO_THREADS = _g("redis_config_io_threads", "io-threads as read by CONFIG GET.")

REDIS_INFO_FIELDS: tuple[InfoField, ...] = (
    # server and clients
    _rg("uptime_in_seconds", "redis_uptime_in_seconds", "Seconds since the server started."),
    _rg("hz", "redis_hz", "Current frequency of background tasks."),
    _rg("configured_hz", "redis_configured_hz", "Configured frequency of background tasks."),
    _rg("process_id", "redis_process_id", "Process id of the server."),
    _rg("io_threads_active", "redis_io_threads_active", "1 while I/O threads are active."),
    _rg("connected_clients", "redis_connected_clients", "Client connections (not replicas)."),
    _rg("cluster_connections", "redis_cluster_connections", "Sockets used by the cluster bus."),
    _rg("blocked_clients", "redis_blocked_clients", "Clients pending on a blocking call."),
    _rg("maxclients", "redis_max_clients", "The maxclients setting."),
    _rg("maxclients", "redis_config_maxclients", "The maxclients setting (INFO has it)."),
    _rg("pubsub_clients", "redis_pubsub_clients", "Clients in pub/sub mode."),
    _rg("watching_clients", "redis_watching_clients", "Clients in WATCH mode."),
    _rg("total_watched_keys", "redis_total_watched_keys", "Keys being watched."),
    _rg("total_blocking_keys", "redis_total_blocking_keys", "Keys clients are blocked on."),
    _rg("total_blocking_keys_on_nokey", "redis_total_blocking_keys_on_nokey",
        "Keys clients are blocked on until they exist."),
    _rg("tracking_clients", "redis_tracking_clients", "Clients being tracked."),
    _rg("clients_in_timeout_table", "redis_clients_in_timeout_table",
        "Clients in the clients timeout table."),
    _rg("client_recent_max_input_buffer", "redis_client_recent_max_input_buffer_bytes",
        "Biggest input buffer among current client connections."),
    _rg("client_recent_max_output_buffer", "redis_client_recent_max_output_buffer_bytes",
        "Biggest output buffer among current client connections."),
    # memory
    _rg("used_memory", "redis_memory_used_bytes", "Bytes allocated by Redis."),
    _rg("used_memory_rss", "redis_memory_used_rss_bytes", "Bytes of resident memory of Redis."),
    _rg("used_memory_peak", "redis_memory_used_peak_bytes", "Peak memory consumed by Redis."),
    _rg("used_memory_lua", "redis_memory_used_lua_bytes", "Bytes used by the Lua engine."),
    _rg("used_memory_overhead", "redis_memory_used_overhead_bytes",
        "Bytes used for internal data structures."),
    _rg("used_memory_startup", "redis_memory_used_startup_bytes", "Bytes used at startup."),
    _rg("used_memory_dataset", "redis_memory_used_dataset_bytes", "Bytes used by the dataset."),
    _rg("used_memory_scripts", "redis_memory_used_scripts_bytes", "Bytes used by cached scripts."),
    _rg("maxmemory", "redis_memory_max_bytes", "The maxmemory setting (0 means no limit)."),
    _rg("total_system_memory", "redis_total_system_memory_bytes",
        "Physical memory of the host Redis runs on."),
    _rg("used_memory_vm_eval", "redis_memory_used_vm_eval_bytes", "Bytes used by the Lua VM."),
    _rg("used_memory_scripts_eval", "redis_memory_used_scripts_eval_bytes",
        "Bytes of overhead of EVAL scripts."),
    _rg("used_memory_vm_functions", "redis_memory_used_vm_functions_bytes",
        "Bytes used by the functions' VM."),
    _rg("used_memory_functions", "redis_memory_used_functions_bytes",
        "Bytes of overhead of functions."),
    _rg("used_memory_vm_total", "redis_memory_used_vm_total_bytes",
        "Bytes used by every script VM."),
    _rg("number_of_functions", "redis_number_of_functions", "Loaded functions."),
    _rg("number_of_libraries", "redis_number_of_libraries", "Loaded function libraries."),
    _rg("mem_replication_backlog", "redis_mem_replication_backlog_bytes",
        "Bytes used by the replication backlog."),
    _rg("mem_total_replication_buffers", "redis_mem_total_replication_buffers_bytes",
        "Bytes of every replication buffer."),
    _rg("mem_cluster_links", "redis_mem_cluster_links_bytes", "Bytes used by cluster bus links."),
    _rg("mem_aof_buffer", "redis_mem_aof_buffer_bytes", "Bytes used by the AOF buffers."),
    _rg("mem_overhead_db_hashtable_rehashing", "redis_mem_overhead_db_hashtable_rehashing_bytes",
        "Bytes of temporary overhead of rehashing the key tables."),
    _rg("allocator_muzzy", "redis_allocator_muzzy_bytes", "Bytes in muzzy pages."),
    _rg("number_of_cached_scripts", "redis_number_of_cached_scripts", "Cached Lua scripts."),
    _rg("allocator_active", "redis_allocator_active_bytes", "Bytes in active pages."),
    _rg("allocator_allocated", "redis_allocator_allocated_bytes", "Bytes allocated."),
    _rg("allocator_resident", "redis_allocator_resident_bytes", "Bytes resident."),
    _rg("allocator_frag_ratio", "redis_allocator_frag_ratio", "Allocator fragmentation ratio."),
    _rg("allocator_frag_bytes", "redis_allocator_frag_bytes", "Allocator fragmentation bytes."),
    _rg("allocator_rss_ratio", "redis_allocator_rss_ratio", "Allocator resident to active ratio."),
    _rg("allocator_rss_bytes", "redis_allocator_rss_bytes", "Resident minus active."),
    _rg("mem_fragmentation_ratio", "redis_mem_fragmentation_ratio",
        "Ratio of RSS to memory used by Redis."),
    _rg("mem_fragmentation_bytes", "redis_mem_fragmentation_bytes",
        "RSS minus memory used by Redis."),
    _rg("mem_clients_slaves", "redis_mem_clients_slaves", "Bytes used by replica clients."),
    _rg("mem_clients_normal", "redis_mem_clients_normal", "Bytes used by normal clients."),
    _rg("mem_not_counted_for_evict", "redis_mem_not_counted_for_eviction_bytes",
        "Bytes not counted against maxmemory (replication and AOF buffers)."),
    _rg("lazyfree_pending_objects", "redis_lazyfree_pending_objects", "Objects to free."),
    _rg("lazyfreed_objects", "redis_lazyfreed_objects", "Objects freed lazily."),
    _rg("active_defrag_running", "redis_active_defrag_running", "1 while active defrag runs."),
    _rg("migrate_cached_sockets", "redis_migrate_cached_sockets", "MIGRATE sockets."),
    _rg("active_defrag_hits", "redis_defrag_hits", "Value reallocations done by active defrag."),
    _rg("active_defrag_misses", "redis_defrag_misses", "Aborted value reallocations by defrag."),
    _rg("active_defrag_key_hits", "redis_defrag_key_hits", "Keys actively defragmented."),
    _rg("active_defrag_key_misses", "redis_defrag_key_misses", "Keys skipped by active defrag."),
    # persistence
    _rg("loading", "redis_loading_dump_file", "1 while a dump file is loading."),
    _rg("async_loading", "redis_async_loading", "1 while a replica loads its dataset in the "
        "background."),
    _rc("rdb_saves", "redis_rdb_saves_total", "RDB snapshots taken since startup."),
    _rg("rdb_last_load_keys_expired", "redis_rdb_last_load_expired_keys",
        "Volatile keys deleted during the last RDB load."),
    _rg("rdb_last_load_keys_loaded", "redis_rdb_last_load_loaded_keys",
        "Keys loaded during the last RDB load."),
    _rg("rdb_changes_since_last_save", "redis_rdb_changes_since_last_save",
        "Changes since the last dump."),
    _rg("rdb_bgsave_in_progress", "redis_rdb_bgsave_in_progress", "1 while an RDB save runs."),
    _rg("rdb_last_save_time", "redis_rdb_last_save_timestamp_seconds",
        "Unix time of the last successful RDB save."),
    _rg("rdb_last_bgsave_status", "redis_rdb_last_bgsave_status",
        "1 when the last RDB save succeeded."),
    _rg("rdb_last_bgsave_time_sec", "redis_rdb_last_bgsave_duration_seconds",
        "Duration of the last RDB save."),
    _rg("rdb_current_bgsave_time_sec", "redis_rdb_current_bgsave_duration_seconds",
        "Duration of the running RDB save."),
    _rg("rdb_last_cow_size", "redis_rdb_last_cow_size_bytes",
        "Copy-on-write bytes of the last RDB save."),
    _rg("aof_enabled", "redis_aof_enabled", "1 when AOF is on."),
    _rg("aof_current_size", "redis_aof_current_size_bytes", "Size of the AOF now."),
    _rg("aof_base_size", "redis_aof_base_size_bytes", "Size of the AOF at the last rewrite."),
    _rg("aof_pending_rewrite", "redis_aof_pending_rewrite",
        "1 when a rewrite waits for an RDB save to end."),
    _rg("aof_buffer_length", "redis_aof_buffer_length", "Size of the AOF buffer."),
    _rg("aof_rewrite_buffer_length", "redis_aof_rewrite_buffer_length",
        "Size of the AOF rewrite buffer."),
    _rg("aof_pending_bio_fsync", "redis_aof_pending_bio_fsync",
        "fsync jobs waiting in the background I/O queue."),
    _rg("aof_delayed_fsync", "redis_aof_delayed_fsync", "Delayed fsync calls."),
    _rg("aof_rewrite_in_progress", "redis_aof_rewrite_in_progress", "1 while an AOF rewrite runs."),
    _rg("aof_rewrite_scheduled", "redis_aof_rewrite_scheduled", "1 when an AOF rewrite is due."),
    _rg("aof_last_rewrite_time_sec", "redis_aof_last_rewrite_duration_seconds",
        "Duration of the last AOF rewrite."),
    _rg("aof_current_rewrite_time_sec", "redis_aof_current_rewrite_duration_seconds",
        "Duration of the running AOF rewrite."),
    _rg("aof_last_cow_size", "redis_aof_last_cow_size_bytes",
        "Copy-on-write bytes of the last AOF rewrite."),
    _rg("aof_last_bgrewrite_status", "redis_aof_last_bgrewrite_status",
        "1 when the last AOF rewrite succeeded."),
    _rg("aof_last_write_status", "redis_aof_last_write_status",
        "1 when the last AOF write succeeded."),
    _rg("module_fork_in_progress", "redis_module_fork_in_progress", "1 while a module fork runs."),
    _rg("module_fork_last_cow_size", "redis_module_fork_last_cow_size",
        "Copy-on-write bytes of the last module fork."),
    # stats
    _rc("total_connections_received", "redis_connections_received_total",
        "Connections accepted by the server."),
    _rc("total_commands_processed", "redis_commands_processed_total",
        "Commands processed by the server."),
    _rc("rejected_connections", "redis_rejected_connections_total",
        "Connections rejected because of maxclients."),
    _rc("total_net_input_bytes", "redis_net_input_bytes_total", "Bytes read from the network."),
    _rc("total_net_output_bytes", "redis_net_output_bytes_total", "Bytes written to the network."),
    _rc("total_net_repl_input_bytes", "redis_net_repl_input_bytes_total",
        "Bytes read from the network for replication."),
    _rc("total_net_repl_output_bytes", "redis_net_repl_output_bytes_total",
        "Bytes written to the network for replication."),
    _rc("expired_keys", "redis_expired_keys_total", "Keys removed by TTL."),
    _rc("evicted_keys", "redis_evicted_keys_total", "Keys evicted because of maxmemory."),
    _rc("evicted_clients", "redis_evicted_clients_total",
        "Clients evicted because of maxmemory-clients."),
    _rc("keyspace_hits", "redis_keyspace_hits_total", "Successful key lookups."),
    _rc("keyspace_misses", "redis_keyspace_misses_total", "Failed key lookups."),
    _rg("expired_stale_perc", "redis_expired_stale_percentage",
        "Percentage of keys probably expired but not yet removed."),
    _rg("expired_stale_perc", "redis_expired_stale_ratio",
        "Share of keys probably expired but not yet removed (0-1).", 0.01),
    _rc("expired_time_cap_reached_count", "redis_expired_time_cap_reached_total",
        "Active expiry cycles that stopped early on their time cap."),
    _rc("expire_cycle_cpu_milliseconds", "redis_expire_cycle_cpu_time_seconds_total",
        "CPU time spent in active expiry cycles.", 0.001),
    _rc("total_eviction_exceeded_time", "redis_eviction_exceeded_time_seconds_total",
        "Time used memory was above maxmemory.", 0.001),
    _rg("current_eviction_exceeded_time", "redis_current_eviction_exceeded_time_seconds",
        "Time used memory has been above maxmemory now.", 0.001),
    _rg("pubsub_channels", "redis_pubsub_channels", "Pub/sub channels with subscribers."),
    _rg("pubsub_patterns", "redis_pubsub_patterns", "Pub/sub patterns with subscribers."),
    _rg("pubsubshard_channels", "redis_pubsubshard_channels",
        "Shard channels with subscribers."),
    _rc("evicted_scripts", "redis_evicted_scripts_total", "Scripts evicted for memory."),
    _rc("expired_subkeys", "redis_expired_subkeys_total", "Hash fields removed by TTL."),
    _rc("client_query_buffer_limit_disconnections",
        "redis_client_query_buffer_limit_disconnections_total",
        "Clients disconnected for their query buffer."),
    _rc("client_output_buffer_limit_disconnections",
        "redis_client_output_buffer_limit_disconnections_total",
        "Clients disconnected for their output buffer."),
    _rc("reply_buffer_shrinks", "redis_reply_buffer_shrinks_total", "Reply buffer shrinks."),
    _rc("reply_buffer_expands", "redis_reply_buffer_expands_total", "Reply buffer expansions."),
    _rc("acl_access_denied_auth", "redis_acl_access_denied_auth_total",
        "Authentication failures."),
    _rc("acl_access_denied_cmd", "redis_acl_access_denied_cmd_total",
        "Commands refused by ACL."),
    _rc("acl_access_denied_key", "redis_acl_access_denied_key_total",
        "Key accesses refused by ACL."),
    _rc("acl_access_denied_channel", "redis_acl_access_denied_channel_total",
        "Channel accesses refused by ACL."),
    _rg("latest_fork_usec", "redis_latest_fork_seconds", "Duration of the latest fork.", 1e-6),
    _rg("tracking_total_keys", "redis_tracking_total_keys", "Keys tracked for clients."),
    _rg("tracking_total_items", "redis_tracking_total_items", "Client-key pairs tracked."),
    _rg("tracking_total_prefixes", "redis_tracking_total_prefixes", "Prefixes tracked."),
    _rg("unexpected_error_replies", "redis_unexpected_error_replies",
        "Unexpected error replies (AOF load or replication)."),
    _rg("total_error_replies", "redis_total_error_replies", "Error replies sent."),
    _rg("dump_payload_sanitizations", "redis_dump_payload_sanitizations",
        "Deep integrity validations of RESTORE payloads."),
    _rg("total_reads_processed", "redis_total_reads_processed", "Read events processed."),
    _rg("total_writes_processed", "redis_total_writes_processed", "Write events processed."),
    _rg("io_threaded_reads_processed", "redis_io_threaded_reads_processed",
        "Read events processed by I/O threads."),
    _rg("io_threaded_writes_processed", "redis_io_threaded_writes_processed",
        "Write events processed by I/O threads."),
    # replication
    _rg("connected_slaves", "redis_connected_slaves", "Connected replicas."),
    _rg("repl_backlog_size", "redis_replication_backlog_bytes", "Replication backlog size."),
    _rg("repl_backlog_size", "redis_config_repl_backlog_size",
        "The repl-backlog-size setting (INFO has it)."),
    _rg("repl_backlog_active", "redis_repl_backlog_is_active", "1 when the backlog is active."),
    _rg("repl_backlog_first_byte_offset", "redis_repl_backlog_first_byte_offset",
        "Master offset of the backlog's first byte."),
    _rg("repl_backlog_histlen", "redis_repl_backlog_history_bytes", "Bytes in the backlog."),
    _rg("master_repl_offset", "redis_master_repl_offset", "Replication offset of the server."),
    _rg("second_repl_offset", "redis_second_repl_offset", "Offset up to which replid2 is valid."),
    _rg("slave_expires_tracked_keys", "redis_slave_expires_tracked_keys",
        "Keys tracked for expiry on a writable replica."),
    _rg("sync_full", "redis_replica_resyncs_full", "Full resyncs with replicas."),
    _rg("sync_partial_ok", "redis_replica_partial_resync_accepted", "Accepted partial resyncs."),
    _rg("sync_partial_err", "redis_replica_partial_resync_denied", "Denied partial resyncs."),
    _rg("slave_priority", "redis_slave_priority", "Priority of the replica for failover."),
    _rg("slave_read_only", "redis_slave_read_only", "1 when the replica is read-only."),
    # cpu
    _rc("used_cpu_sys", "redis_cpu_sys_seconds_total", "System CPU consumed by Redis."),
    _rc("used_cpu_user", "redis_cpu_user_seconds_total", "User CPU consumed by Redis."),
    _rc("used_cpu_sys_children", "redis_cpu_sys_children_seconds_total",
        "System CPU consumed by background processes."),
    _rc("used_cpu_user_children", "redis_cpu_user_children_seconds_total",
        "User CPU consumed by background processes."),
    _rc("used_cpu_sys_main_thread", "redis_cpu_sys_main_thread_seconds_total",
        "System CPU consumed by the main thread."),
    _rc("used_cpu_user_main_thread", "redis_cpu_user_main_thread_seconds_total",
        "User CPU consumed by the main thread."),
    _rc("used_active_time_main_thread", "redis_active_time_main_thread_seconds_total",
        "Time the main thread was busy."),
    # cluster
    _rg("cluster_enabled", "redis_cluster_enabled", "1 when cluster mode is on."),
)  # fmt: skip

# Replication with labels, as redis_exporter has them: a replica names its master, a master
# names each of its replicas.
_MASTER = ("master_host", "master_port")
_REPLICA = ("slave_ip", "slave_port", "slave_state")
REDIS_MASTER_LINK_UP = _g(
    "redis_master_link_up", "1 when the replica's link to its master is up.", _MASTER
)
REDIS_MASTER_LAST_IO = _g(
    "redis_master_last_io_seconds_ago",
    "Seconds since the replica last heard from its master (-1 while the link is down).",
    _MASTER,
)
REDIS_MASTER_SYNC_IN_PROGRESS = _g(
    "redis_master_sync_in_progress", "1 while the replica syncs from its master.", _MASTER
)
REDIS_SLAVE_REPL_OFFSET = _g(
    "redis_slave_repl_offset", "Replication offset of the replica.", _MASTER
)
REDIS_SLAVE_INFO = _g(
    "redis_slave_info",
    "Information about the replica; always 1.",
    ("master_host", "master_port", "read_only"),
)
REDIS_CONNECTED_SLAVE_OFFSET = _g(
    "redis_connected_slave_offset_bytes", "Replication offset of a connected replica.", _REPLICA
)
REDIS_CONNECTED_SLAVE_LAG = _g(
    "redis_connected_slave_lag_seconds",
    "Seconds since a connected replica last acknowledged its offset.",
    _REPLICA,
)

# CLUSTER INFO of a cluster node: every cluster_* field as redis_cluster_*, as redis_exporter.
CLUSTER_MESSAGE_TYPES = (
    "ping", "pong", "meet", "fail", "publish", "publishshard", "auth-req", "auth-ack",
    "update", "mfstart", "module",
)  # fmt: skip
"""The cluster bus message types Redis and Valkey count in CLUSTER INFO."""
REDIS_CLUSTER_INFO_FIELDS: tuple[InfoField, ...] = (
    _rg("cluster_state", "redis_cluster_state", "1 when the cluster state is ok."),
    _rg("cluster_slots_assigned", "redis_cluster_slots_assigned", "Slots assigned to nodes."),
    _rg("cluster_slots_ok", "redis_cluster_slots_ok", "Slots served by a healthy node."),
    _rg("cluster_slots_pfail", "redis_cluster_slots_pfail",
        "Slots whose node this node thinks is failing (PFAIL)."),
    _rg("cluster_slots_fail", "redis_cluster_slots_fail",
        "Slots whose node the cluster agrees has failed (FAIL)."),
    _rg("cluster_known_nodes", "redis_cluster_known_nodes", "Nodes this node knows of."),
    _rg("cluster_size", "redis_cluster_size", "Masters serving at least one slot."),
    _rg("cluster_current_epoch", "redis_cluster_current_epoch", "The cluster's current epoch."),
    _rg("cluster_my_epoch", "redis_cluster_my_epoch", "This node's config epoch."),
    _rc("cluster_stats_messages_sent", "redis_cluster_messages_sent_total",
        "Cluster bus messages sent."),
    _rc("cluster_stats_messages_received", "redis_cluster_messages_received_total",
        "Cluster bus messages received."),
    *(
        _rg(f"cluster_stats_messages_{kind}_{way}",
            f"redis_cluster_stats_messages_{kind.replace('-', '_')}_{way}",
            f"Cluster bus {kind} messages {way}.")
        for kind in CLUSTER_MESSAGE_TYPES
        for way in ("sent", "received")
    ),
)  # fmt: skip

# A Sentinel: INFO's Sentinel section, and what the SENTINEL commands say of each master.
_SENTINEL_MASTER = ("master_name", "master_address")
REDIS_SENTINEL_INFO_FIELDS: tuple[InfoField, ...] = (
    _rg("sentinel_masters", "redis_sentinel_masters", "Masters this Sentinel watches."),
    _rg("sentinel_tilt", "redis_sentinel_tilt", "1 while the Sentinel is in TILT mode."),
    _rg("sentinel_running_scripts", "redis_sentinel_running_scripts", "Scripts running now."),
    _rg("sentinel_scripts_queue_length", "redis_sentinel_scripts_queue_length",
        "Scripts waiting to run."),
    _rg("sentinel_simulate_failure_flags", "redis_sentinel_simulate_failure_flags",
        "Failure simulation flags."),
)  # fmt: skip
REDIS_SENTINEL_MASTER_STATUS = _g(
    "redis_sentinel_master_status",
    "1 when the Sentinel sees the master ok.",
    (*_SENTINEL_MASTER, "master_status"),
)
REDIS_SENTINEL_MASTER_SLAVES = _g(
    "redis_sentinel_master_slaves", "Replicas of the master.", _SENTINEL_MASTER
)
REDIS_SENTINEL_MASTER_SENTINELS = _g(
    "redis_sentinel_master_sentinels", "Sentinels watching the master.", _SENTINEL_MASTER
)
REDIS_SENTINEL_MASTER_OK_SENTINELS = _g(
    "redis_sentinel_master_ok_sentinels",
    "Sentinels watching the master that are not down (this one included).",
    _SENTINEL_MASTER,
)
REDIS_SENTINEL_MASTER_OK_SLAVES = _g(
    "redis_sentinel_master_ok_slaves", "Replicas of the master that are not down.",
    _SENTINEL_MASTER,
)  # fmt: skip
REDIS_SENTINEL_MASTER_CKQUORUM = _g(
    "redis_sentinel_master_ckquorum_status",
    "1 when the Sentinels can reach the quorum and authorize a failover of the master.",
    ("master_name", "message"),
)
REDIS_SENTINEL_MASTER_QUORUM = _g(
    "redis_sentinel_master_setting_ckquorum", "The quorum setting of the master.",
    _SENTINEL_MASTER,
)  # fmt: skip
REDIS_SENTINEL_MASTER_FAILOVER_TIMEOUT = _g(
    "redis_sentinel_master_setting_failover_timeout",
    "The failover-timeout setting of the master (milliseconds, as Sentinel reports it).",
    _SENTINEL_MASTER,
)
REDIS_SENTINEL_MASTER_PARALLEL_SYNCS = _g(
    "redis_sentinel_master_setting_parallel_syncs", "The parallel-syncs setting of the master.",
    _SENTINEL_MASTER,
)  # fmt: skip
REDIS_SENTINEL_MASTER_DOWN_AFTER = _g(
    "redis_sentinel_master_setting_down_after_seconds",
    "The down-after-milliseconds setting of the master, in seconds.",
    _SENTINEL_MASTER,
)
REDIS_SENTINEL_MASTER_CONFIG_EPOCH = _g(
    "redis_sentinel_master_config_epoch",
    "The master's configuration epoch (it grows with each failover).",
    _SENTINEL_MASTER,
)
REDIS_SENTINEL_MASTER_LAST_OK_PING = _g(
    "redis_sentinel_master_last_ok_ping_reply_seconds",
    "Seconds since the master last answered the Sentinel's PING.",
    _SENTINEL_MASTER,
)

REDIS_EXPORTER_RENAMED: dict[str, str] = {
    "redis_rdb_last_bgsave_duration_sec": "redis_rdb_last_bgsave_duration_seconds",
    "redis_rdb_current_bgsave_duration_sec": "redis_rdb_current_bgsave_duration_seconds",
    "redis_aof_last_rewrite_duration_sec": "redis_aof_last_rewrite_duration_seconds",
    "redis_aof_current_rewrite_duration_sec": "redis_aof_current_rewrite_duration_seconds",
    "redis_migrate_cached_sockets_total": "redis_migrate_cached_sockets",
    "redis_memory_used_vm_total": "redis_memory_used_vm_total_bytes",
    "redis_sentinel_master_setting_down_after_milliseconds":
        "redis_sentinel_master_setting_down_after_seconds",
    "redis_expire_cycle_cpu_time_ms_total": "redis_expire_cycle_cpu_time_seconds_total",
    "redis_eviction_exceeded_time_ms_total": "redis_eviction_exceeded_time_seconds_total",
    "redis_current_eviction_exceeded_time_ms": "redis_current_eviction_exceeded_time_seconds",
}  # fmt: skip
"""redis_exporter's name -> cachewatch's, where its name fails Prometheus's naming lint."""

# --- Redis source: cachewatch's own ------------------------------------------------------------
REDIS_INFO_UNPARSED = _g(
    "cachewatch_redis_info_unparsed_fields",
    "Fields of the last INFO reply that could not be parsed and were skipped.",
)
REDIS_CONFIG_READABLE = _g(
    "cachewatch_redis_config_readable",
    "1 when CONFIG GET is allowed; 0 when the server forbids it (managed Redis).",
)
REDIS_FOLLOWED_MASTER = _g(
    "cachewatch_redis_master_info",
    "The master the Sentinels name now, which the exporter reads; always 1.",
    ("master_name", "address"),
)
REDIS_MASTER_SWITCHES = _c(
    "cachewatch_redis_master_switches_total",
    "Times the Sentinels named another master and the exporter followed it.",
    ("master_name",),
)
REDIS_SENTINEL_UP = _g(
    "cachewatch_redis_sentinel_up",
    "1 when a Sentinel answered the last question for the master's address.",
    ("master_name",),
)
REDIS_CLUSTER_NODES = _g(
    "cachewatch_redis_cluster_nodes",
    "Nodes of the Redis Cluster by role (failed: flagged fail, pfail or without address).",
    ("role",),
)
REDIS_CLUSTER_SLOTS_SERVED = _g(
    "cachewatch_redis_cluster_slots_served",
    "Slots served by the masters discovery found healthy (16384 when the cluster is whole).",
)
REDIS_CLUSTER_CHANGES = _c(
    "cachewatch_redis_cluster_topology_changes_total",
    "Nodes that joined, left or changed role or health, as discovery saw it.",
)
REDIS_CLUSTER_DISCOVERY_UP = _g(
    "cachewatch_redis_cluster_discovery_up",
    "1 when the last CLUSTER NODES of discovery got an answer.",
)
CENSUS_MASTERS = _g(
    "cachewatch_census_masters",
    "Masters the census counts keys on (a cluster's masters, each within its own budget).",
)
CENSUS_COVERAGE = _g(
    "cachewatch_census_coverage_ratio",
    "Share of the key space counted directly in the cache's size estimate (1 means an exact "
    "count over one full SCAN cycle; below 1 the count is scaled up from the part seen).",
    ("cache",),
)
CENSUS_AGE = _g(
    "cachewatch_census_age_seconds",
    "Age of the oldest key-space observation in the cache's size and memory estimates.",
    ("cache",),
    "seconds",
)
CENSUS_SAMPLED_KEYS = _g(
    "cachewatch_census_memory_sampled_keys",
    "Keys measured with MEMORY USAGE behind the cache's memory estimate.",
    ("cache",),
)
CENSUS_SAMPLE_RATIO = _g(
    "cachewatch_census_memory_sample_ratio",
    "Share of the cache's counted keys measured with MEMORY USAGE (1 means exact memory).",
    ("cache",),
)
CENSUS_UNMATCHED = _g(
    "cachewatch_census_unmatched_keys",
    "Keys in the census window that match no configured cache prefix.",
)
CENSUS_PROGRESS = _g(
    "cachewatch_census_pass_progress_ratio",
    "Share of the key space covered by the census's current SCAN pass.",
)
CENSUS_PASSES = _c("cachewatch_census_passes_total", "Full SCAN passes completed by the census.")
CENSUS_KEYS_SCANNED = _c(
    "cachewatch_census_keys_scanned_total", "Keys returned to the census by SCAN."
)
CENSUS_LAST_PASS_DURATION = _g(
    "cachewatch_census_last_pass_duration_seconds",
    "Wall time of the census's last complete SCAN pass.",
    unit="seconds",
)
CENSUS_ERRORS = _c("cachewatch_census_errors_total", "Census polls that failed.")


ALL: tuple[MetricSpec, ...] = tuple(
    v for v in list(globals().values()) if isinstance(v, MetricSpec)
) + tuple(
    info.spec
    for info in (*REDIS_INFO_FIELDS, *REDIS_CLUSTER_INFO_FIELDS, *REDIS_SENTINEL_INFO_FIELDS)
)
BY_NAME: dict[str, MetricSpec] = {spec.name: spec for spec in ALL}


def info_metric(name: str) -> str:
    """The name of an INFO-derived metric, checked against the catalogue (rules and panels
    spell names only through here)."""
    if not any(info.spec.name == name for info in REDIS_INFO_FIELDS):
        raise KeyError(name)
    return name


def cluster_info_metric(name: str) -> str:
    """The name of a CLUSTER INFO metric, checked against the catalogue."""
    if not any(info.spec.name == name for info in REDIS_CLUSTER_INFO_FIELDS):
        raise KeyError(name)
    return name


OTHER = "other"
"""The label value that absorbs values beyond a cardinality cap: cache names beyond
``--cache.max-names``, and a cache's operations, error kinds and cleanup triggers beyond
their own caps."""


def families(specs: Iterable[MetricSpec]) -> dict[str, Any]:
    """Fresh families for several specs, keyed by spec name."""
    return {spec.name: spec.family() for spec in specs}


# --- what alerts read --------------------------------------------------------------------------
@dataclass(frozen=True)
class Signal:
    """A quantity alerts compare against a threshold, derived from the per-cache metrics; the
    exporter and the generated rules compute it the same way."""

    name: str
    unit: str
    """How it is shown: ratio, bytes, seconds, factor, per_second or bool."""
    meaning: str


SIGNALS: dict[str, Signal] = {
    s.name: s
    for s in (
        Signal("hit_ratio", "ratio", "hits / (hits + misses) over the rate window"),
        Signal("request_rate", "per_second", "lookups per second over the rate window"),
        Signal("memory_bytes", "bytes", "memory held by the cache now"),
        Signal("memory_limit_ratio", "ratio", "memory / memory limit now"),
        Signal(
            "memory_full_seconds",
            "seconds",
            "(limit - memory now) / least-squares memory slope over the trend window, when growing",
        ),
        Signal("error_ratio", "ratio", "errors / (lookups + puts + removals) over the rate window"),
        Signal("eviction_ratio", "ratio", "evictions / puts over the rate window"),
        Signal(
            "latency_p99_seconds",
            "seconds",
            "p99 of the operation latency histogram's increase over the rate window (the "
            "slowest operation)",
        ),
        Signal(
            "cleanup_overdue_factor",
            "factor",
            "seconds since the last cleanup / the usual interval between cleanups",
        ),
        Signal("source_up", "bool", "1 when the source's last poll worked"),
    )
}
"""Every signal by name: the built-in alerts read these, and so may custom alerts (all but
``source_up``, which is about a source rather than a cache)."""

ALERTABLE: tuple[MetricSpec, ...] = (
    CACHE_GETS, CACHE_PUTS, CACHE_REMOVALS, CACHE_EVICTIONS, EXPIRATIONS, ERRORS, CLEANUPS,
    CLEANUP_REMOVED, CACHE_SIZE, MEMORY, MEMORY_LIMIT, MAX_ENTRIES, LAST_CLEANUP, HIT_RATIO,
    MEMORY_GROWTH, SIZE_GROWTH, HIT_RATIO_CHANGE, MEMORY_FULL, CLEANUPS_PER_HOUR,
)  # fmt: skip
"""The per-cache metrics a custom alert may read: a gauge as it is (per process), a counter
as its per-second rate over ``alerts.rate-window`` summed over the labels besides ``cache``
(per service)."""
