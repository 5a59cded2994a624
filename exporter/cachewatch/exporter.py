"""The one place where a running cachewatch is assembled: sources -> poller -> the private
Prometheus registry, health, analysis, tracing and the routes the web serves.

``Exporter`` is the running object; ``build`` attaches what every mode shares from the
settings; ``serve_exporter``, ``demo_exporter`` and ``embedded_exporter`` choose the sources
of ``cachewatch serve``, ``cachewatch demo`` and an application embedding the library (in
multi-process mode, the aggregate of the processes' files instead of this process's table).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector

from .analysis.definitions import WARNING, alert_definitions
from .analysis.engine import Analysis
from .analysis.health import HealthMonitor
from .config import Config, ConfigError, files, load_config
from .config.files import SettingsFiles
from .config.settings import (
    AlertSettings,
    AnalysisSettings,
    LinkSettings,
    MultiprocessSettings,
    settings,
)
from .config.webconfig import WebConfig
from .exposition.families import SnapshotCollector
from .exposition.kept import KeptCollector, gc_state, never_changes
from .exposition.process import KeptProcessCollector
from .instrument.table import CacheTable, default_table
from .sources import Source
from .sources.local import LocalSource
from .sources.poller import Poller
from .tracing import spans
from .web import alerts_page, health_page, probes, report_page
from .web.html import PageRenderer
from .web.routes import Action, ActionHandler, JsonHandler, Route, WSGIApp

if TYPE_CHECKING:
    from .analysis.sampler import Clock
    from .demo import DemoWorkload
    from .sources.directory import NodeDirectory
    from .tracing.otel_metrics import OtelMetricsBridge

log = logging.getLogger(__name__)

RELOAD = "/-/reload"


@dataclass(frozen=True)
class Reloaded:
    """What a reload did: applied (``ok``) or refused (``error``); the changed settings that
    need a restart; whether the generated rules need ``cachewatch generate`` to follow."""

    ok: bool
    error: str = ""
    restart_needed: tuple[str, ...] = ()
    generate_needed: bool = False


def _rule_shape(config: AlertSettings) -> list[Any]:
    """What the generated rules hold besides the thresholds and escalation, which they read
    from the exporter's series: alerts, signals, operators, severities, ``for``."""
    shape: list[Any] = [config.alert_escalate_after_seconds, config.hit_ratio_min_request_rate]
    for d in alert_definitions(config):
        timings = [(t.severity, t.for_seconds) for t in d.thresholds]
        shape.append((d.name, d.signal, d.operator, timings))
    return shape


LIVE_FIELDS = frozenset(f.name for f in dataclasses.fields(AlertSettings)) - {
    "alert_rate_window", "trend_window",
}  # fmt: skip
"""The settings a reload applies at once; every other change waits for a restart."""
RESTART_FIELDS = tuple(
    f.name for f in dataclasses.fields(Config) if f.init and f.name not in LIVE_FIELDS
)


def _report_reload(running: Config, config: Config, restart: list[str]) -> Reloaded:
    keys = {name: meta.key for name, meta, _ in settings()}
    waiting = sorted(
        {keys.get(name, name) for name in restart}
        | {
            meta.key
            for name, meta, _ in settings()
            if name not in LIVE_FIELDS and getattr(running, name) != getattr(config, name)
        }
    )
    generate = _rule_shape(running.alerts) != _rule_shape(config.alerts)
    log.info(
        "reloaded the configuration%s: alert thresholds and escalation in force now",
        f" from {config.config_file}" if config.config_file else "",
    )
    if waiting:
        log.warning("reload: changed settings that need a restart: %s", ", ".join(waiting))
    if generate:
        log.warning(
            "reload: the alert definitions changed (alerts, for, escalate-after): run "
            "cachewatch generate so that the Prometheus rules follow; thresholds follow without"
        )
    return Reloaded(True, restart_needed=tuple(waiting), generate_needed=generate)


class Exporter:
    """Sources polled by one poller, published on a private Prometheus registry, with
    health checks and the JSON and WSGI routes that the web serves."""

    def __init__(
        self,
        sources: Sequence[Source],
        *,
        caches: CacheTable | None = None,
        process_metrics: bool = True,
    ) -> None:
        self.poller = Poller(sources)
        self.caches = caches
        """The table of in-process caches, when this exporter publishes them."""
        self.registry = CollectorRegistry(auto_describe=False)
        """What /metrics renders."""
        self.registry.register(SnapshotCollector(self.poller, caches))
        if process_metrics:
            KeptProcessCollector(registry=self.registry)
            self.registry.register(KeptCollector(PlatformCollector(registry=None), never_changes))
            gc_collector = GCCollector(registry=CollectorRegistry())  # it always registers
            self.registry.register(KeptCollector(gc_collector, gc_state))
        self.health = HealthMonitor(self.poller)
        self.registry.register(self.health)
        self.routes: dict[str, Route] = {}
        self.wsgi_routes: dict[str, tuple[str, WSGIApp]] = {}
        self.actions: dict[str, Action] = {}
        self.add_route(
            "/health", "health checks with their detail", self._health, page=health_page.render
        )
        self.add_wsgi_route(probes.HEALTHY, "liveness: the process answers", probes.healthy_app())
        self.add_wsgi_route(
            probes.READY,
            "readiness: every source polled, the last poll worked",
            probes.ready_app(self.health.readiness),
        )
        self._closers: list[Callable[[], None]] = []
        self.links: dict[str, str | None] = LinkSettings().by_tool()
        """The tools the pages link to (Grafana, Prometheus, ...), from the settings."""
        self.web_config: WebConfig | None = None
        """Access control for the HTTP server (TLS, basic auth), from the settings."""
        self.shared_port = False
        """Whether every process may serve the same port (multi-process mode: each answers
        with the same aggregate)."""
        self._closed = threading.Event()
        self.analysis: Analysis | None = None
        self.config: Config | None = None
        """The settings in force, when built from a configuration (``build``)."""
        self._loader: Callable[[], Config] | None = None
        self._reload_lock = threading.Lock()

    def add_route(
        self, path: str, description: str, handler: JsonHandler, page: PageRenderer | None = None
    ) -> None:
        """Serve ``handler``'s JSON at ``path``; with a ``page``, HTML to a browser."""
        self.routes[path] = Route(path, description, handler, page)

    def add_wsgi_route(self, path: str, description: str, app: WSGIApp) -> None:
        """Serve a WSGI app at ``path`` (not JSON: /probe answers in the Prometheus format).
        The HTTP layer still applies its limits, auth and the no-500 guarantee."""
        self.wsgi_routes[path] = (description, app)

    def add_action(self, path: str, description: str, handler: ActionHandler) -> None:
        """Serve ``handler`` at ``path`` for POST requests (behind the web config's auth)."""
        self.actions[path] = Action(path, description, handler)

    def reloads_with(self, loader: Callable[[], Config]) -> None:
        """Let SIGHUP and ``POST /-/reload`` re-read the configuration with ``loader`` (the
        same flags, the environment and file of now)."""
        self._loader = loader
        self.add_action(RELOAD, "re-read the configuration file (as SIGHUP does)", self._reload)

    def reload(self) -> Reloaded:
        """Re-read the configuration and apply its alert settings at once. A configuration
        that does not load is refused with one log line, and the running settings stay.
        One reload at a time."""
        if self._loader is None or self.analysis is None or self.config is None:
            return Reloaded(False, "this exporter has no configuration to reload")
        with self._reload_lock:
            try:
                config = self._loader()
                restart = self.analysis.reconfigure(config.analysis)
            except ConfigError as exc:
                error = " ".join(str(exc).splitlines())
                log.error("reload refused, the running settings stay: %s", error)
                return Reloaded(False, error)
            running = self.config
            # What a reload cannot apply keeps its running value, so that the next reload
            # still names it as waiting for a restart, and a file set back to it does not.
            self.config = dataclasses.replace(
                config, **{n: getattr(running, n) for n in RESTART_FIELDS}
            )
        return _report_reload(running, config, restart)

    def sighup_handler(self) -> Callable[[int, FrameType | None], None]:
        """A SIGHUP handler that reloads in a thread of its own: a handler runs between two
        bytecodes of the main thread, which may hold any lock."""

        def on_sighup(_signum: int, _frame: FrameType | None) -> None:
            log.info("received SIGHUP, reloading the configuration")
            threading.Thread(target=self.reload, name="cachewatch-reload", daemon=True).start()

        return on_sighup

    def reload_on_sighup(self) -> bool:
        """Reload on SIGHUP inside an application, unless it handles SIGHUP itself (a
        handler of its own; the default ends the process, and an ignored SIGHUP is what
        ``nohup`` hands down, not the application's choice) or this is not the main
        thread (only it may set handlers). True when the handler is set."""
        if threading.current_thread() is not threading.main_thread():
            return False
        if signal.getsignal(signal.SIGHUP) not in (signal.SIG_DFL, signal.SIG_IGN):
            return False
        signal.signal(signal.SIGHUP, self.sighup_handler())
        return True

    def _reload(self) -> tuple[int, Any]:
        result = self.reload()
        if not result.ok:
            return 400, {"status": "error", "error": result.error}
        return 200, {
            "status": "success",
            "restart_needed": list(result.restart_needed),
            "generate_needed": result.generate_needed,
        }

    def configure_alert_threshold(
        self,
        alert: str,
        threshold: float | None,
        *,
        severity: str = WARNING,
        cache: str | None = None,
        escalation: bool | None = None,
    ) -> None:
        """See ``cachewatch.configure_alert_threshold``."""
        if self.analysis is None:
            raise RuntimeError("this exporter runs no analysis: no alerts to configure")
        self.analysis.configure_alert_threshold(
            alert, threshold, severity=severity, cache=cache, escalation=escalation
        )
        log.info(
            "alert threshold set: %s severity=%s cache=%s threshold=%s%s",
            alert,
            severity,
            cache if cache is not None else "(every cache)",
            "(configured)" if threshold is None else f"{threshold:g}",
            "" if escalation is None else f" escalation={'on' if escalation else 'off'}",
        )

    def on_close(self, closer: Callable[[], None]) -> None:
        self._closers.append(closer)

    def attach_analysis(
        self, settings: AnalysisSettings, *, clock: Clock | None = None, start: bool = True
    ) -> Analysis:
        """Trends, alert states, their gauges and health checks, /alerts and /report."""
        in_process = [s.name for s in self.poller.sources if isinstance(s, LocalSource)]
        analysis = Analysis(self.poller, settings, in_process_sources=in_process, clock=clock)
        for collector in analysis.collectors():
            self.registry.register(collector)
        self.health.add_check(analysis.health_check())
        self.add_route(
            "/alerts", "alert states and recent transitions", analysis.alerts, alerts_page.render
        )
        self.add_route(
            "/report", "per-cache report with recommendations", analysis.report, report_page.render
        )
        self.on_close(analysis.stop)
        self.analysis = analysis
        return analysis.start() if start else analysis

    def enable_otel_metrics(self, **options: Any) -> OtelMetricsBridge:
        """Publish metrics recorded through the OpenTelemetry metrics API on /metrics too
        (loads the OpenTelemetry SDK, so only on request); stops with the exporter."""
        from .tracing.otel_metrics import start_otel_metrics

        bridge = start_otel_metrics(self.registry, **options)
        self.on_close(bridge.shutdown)
        return bridge

    def _health(self, _query: Mapping[str, str]) -> tuple[int, Any]:
        healthy, body = self.health.report()
        return (200 if healthy else 503), body

    def close(self) -> None:
        """Stop background work and release sources; safe to call twice."""
        if self._closed.is_set():
            return
        self._closed.set()
        for closer in reversed(self._closers):
            try:
                closer()
            except Exception:
                log.warning("shutdown step failed", exc_info=True)
        self.poller.close()


Loader = Callable[[], Config]
"""Loads the configuration again, as at start (same command and flags), for a reload."""


def build(
    config: Config,
    settings_files: SettingsFiles,
    sources: Sequence[Source],
    caches: CacheTable | None,
    directory: NodeDirectory | None = None,
    *,
    process_metrics: bool = True,
    reload: Loader | None = None,
) -> Exporter:
    """An exporter over ``sources`` with what every mode shares: access control, /probe
    (the configured targets, and the nodes of ``directory``), /discover, analysis, tracing,
    and the reload by ``reload``. ``settings_files`` were read first, so a bad file stops
    the command before any source starts."""
    exporter = Exporter(sources, caches=caches, process_metrics=process_metrics)
    exporter.config = config
    exporter.web_config = settings_files.web_config
    exporter.links = config.links.by_tool()
    if settings_files.probe is not None or directory is not None:
        from .sources.probe import ProbeTargets
        from .web.probe import ProbeApp

        prober = ProbeApp(ProbeTargets(settings_files.probe, directory))
        what = "scrape a configured Redis target or a node /discover lists: ?target=NAME"
        exporter.add_wsgi_route("/probe", what, prober)
        exporter.on_close(prober.close)
    if directory is not None:
        from .sources.directory import sd_groups

        def discover(_query: Mapping[str, str], found: NodeDirectory = directory) -> Any:
            return 200, sd_groups(found)

        exporter.add_route("/discover", "the Redis nodes, for http_sd_configs", discover)
    exporter.attach_analysis(config.analysis)
    if reload is not None:
        exporter.reloads_with(reload)
    tracing = config.tracing
    started = spans.setup_tracing(
        record_keys=tracing.tracing_record_keys, instrument=tracing.tracing_instrument
    )
    if started is not None:
        exporter.on_close(spans.shutdown_tracing)
    if tracing.otel_metrics_bridge:
        exporter.enable_otel_metrics(scope_labels=tracing.otel_metrics_scope_labels)
    return exporter


def serve_exporter(config: Config, reload: Loader | None = None) -> Exporter:
    """``cachewatch serve``: one Redis server (stats and logical caches) plus this process."""
    multiprocess = config.multiprocess
    if (
        config.redis_addr is None
        and not config.redis_sentinel_addrs
        and not config.probe_config_file
        and multiprocess is None
    ):
        raise ConfigError(
            "--redis.addr: required by serve (e.g. --redis.addr redis://localhost:6379/0), "
            "unless --redis.sentinel-addr names Sentinels, --probe.config.file the targets "
            "of /probe or --multiprocess.dir the directory of a multi-process application"
        )
    if multiprocess is not None and not os.path.isdir(multiprocess.multiprocess_dir):
        raise ConfigError(f"--multiprocess.dir: {multiprocess.multiprocess_dir} is not a directory")
    settings_files = files.read_files(config, redis=True)
    caches: CacheTable | None = None
    sources: list[Source] = []
    if multiprocess is not None:
        sources.append(multiprocess_source(multiprocess))
        log.info("publishing the processes of %s", multiprocess.multiprocess_dir)
    else:
        caches = CacheTable(max_caches=config.max_caches)
        sources.append(LocalSource(caches))
    redis = settings_files.redis
    directory: NodeDirectory | None = None
    if redis is not None:
        from .sources.redis import RedisSource

        names = ", ".join(str(cache) for cache in redis.caches) or "none"
        if redis.cluster:
            from .sources.cluster_source import ClusterSource
            from .sources.directory import ClusterDirectory

            cluster = ClusterSource(redis)
            sources.insert(0, cluster)
            directory = ClusterDirectory(cluster.topology)
            log.info("watching the redis cluster of %s; logical caches: %s", redis.address, names)
        else:
            source = RedisSource(redis)
            sources.insert(0, source)
            if source.watch is not None:
                from .sources.directory import SentinelDirectory

                directory = SentinelDirectory(source.watch, refresh=redis.topology_refresh)
            log.info("watching redis %s; logical caches: %s", source.where, names)
    return build(config, settings_files, sources, caches, directory, reload=reload)


def demo_exporter(config: Config, reload: Loader | None = None) -> tuple[Exporter, DemoWorkload]:
    """``cachewatch demo``: the demo's in-process caches under its workload (not started),
    with the analysis's durations compressed to the demo's pace (on reload too)."""
    from .demo import DemoWorkload, demo_analysis_config  # not loaded by serve

    settings_files = files.read_files(config)
    config = demo_analysis_config(config)
    caches = CacheTable(max_caches=config.max_caches)
    reload_demo = None if reload is None else (lambda: demo_analysis_config(reload()))
    demo = config.demo
    # The caches exist before the analysis takes its first sample.
    workload = DemoWorkload(seed=demo.seed, speed=demo.demo_speed, registry=caches)
    exporter = build(config, settings_files, [LocalSource(caches)], caches, reload=reload_demo)
    return exporter, workload


_embedded: Exporter | None = None
_embedded_lock = threading.Lock()


def embedded_exporter() -> Exporter:
    """The exporter of the module-level API: this process's in-process caches, with the
    settings the environment gives (``CACHEWATCH_SAMPLE_INTERVAL``, ``CACHE_*``, ...)."""
    global _embedded
    with _embedded_lock:
        if _embedded is None:
            config = load_config("embedded", {})
            caches = default_table()
            settings_files = files.read_files(config)
            reload = functools.partial(load_config, "embedded", {})
            multiprocess = config.multiprocess
            if multiprocess is None:
                _embedded = build(
                    config, settings_files, [LocalSource(caches)], caches, reload=reload
                )
            else:
                # Any worker may answer a scrape: only what is the same in all of them (the
                # aggregate) is published, not this worker's own process metrics.
                source = multiprocess_source(multiprocess)
                _embedded = build(
                    config, settings_files, [source], None, process_metrics=False, reload=reload
                )
                _embedded.shared_port = True
        return _embedded


def multiprocess_source(settings: MultiprocessSettings) -> Source:
    """The aggregate of a multi-process application's files (and prometheus_client's)."""
    from .sources.multiprocess import MultiprocessSource

    return MultiprocessSource(settings)
