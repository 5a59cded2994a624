"""The Redis source: server stats from INFO and logical caches by key prefix.

Each poll (one per round of the poller) costs one round trip: ``INFO`` (every section but
latencystats, which Redis 7 computes for every command and nothing here reads), plus
``CONFIG GET`` for maxmemory and databases now and then where the server allows it.
Concurrent scrapes share the poll in flight (the poller's single flight). After a failure,
polls answer at once with ``redis_up 0`` until a backoff delay has passed, so a dead or
stalled Redis costs a scrape at most one timeout, and logs say so once, not once per
scrape. The key census runs in its own thread, off the scrape path. ``poll`` never raises.

The commands go through the exporter's own small client (``resp``; why not redis-py: there).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.metrics_core import Metric

from .. import catalog
from ..config.redis import RedisSettings
from ..snapshot import CacheSnapshot, SourceSnapshot
from .census import CensusFamilies, CensusReport, KeyCensus, census_loop
from .info_delta import InfoChange, InfoParser
from .infofields import FamilyBuilder, FamilyMemo
from .redis_info import ParsedInfo, info_families, parse_info, to_number
from .resp import Client, ResponseError, TlsOptions
from .sentinel import MasterDetails, add_sentinel_masters, fetch_master_details, masters_of
from .sentinel_watch import MasterWatch

log = logging.getLogger(__name__)

SOURCE_NAME = "redis"
CONFIG_REFRESH_SECONDS = 60.0
CONFIG_FORBIDDEN_RETRY_SECONDS = 600.0
STILL_DOWN_LOG_EVERY = 60.0
MAX_ERROR_LENGTH = 300
INFO_SECTIONS = (
    "server", "clients", "memory", "persistence", "stats", "replication", "cpu", "modules",
    "errorstats", "cluster", "keyspace", "commandstats",
)  # fmt: skip
"""INFO ALL without latencystats, which nothing here reads: ~35% less of Redis's CPU."""
CONFIG_NAMES = ("maxmemory", "databases", "io-threads")
"""Read with CONFIG GET once a minute (one name a command: Redis < 7 takes one)."""


@dataclass
class _Replies:
    """One poll's replies: INFO, and what the kind of server adds to it."""

    info: Any
    cluster_info: Any = None
    sentinel_masters: Any = None


def connect(settings: RedisSettings, max_connections: int = 4) -> Client:
    """A client with the settings' timeouts, credentials and TLS, and no retries of its own
    (the poller backs off)."""
    address = settings.address
    tls = None
    if address.tls:
        tls = TlsOptions(settings.tls_ca_file, settings.tls_cert_file, settings.tls_key_file)
    return Client(
        address.host,
        address.port,
        db=address.db,
        username=settings.username,
        password=settings.password.reveal() if settings.password else None,
        connect_timeout=settings.connect_timeout,
        socket_timeout=settings.socket_timeout,
        tls=tls,
        max_connections=max_connections,
    )


class CensusCalls:
    """SCAN and pipelined MEMORY USAGE, as the census wants them."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.calls = 0

    def scan(self, cursor: int, count: int) -> tuple[int, list[bytes]]:
        self.calls += 1
        next_cursor, keys = self.client.execute_command("SCAN", cursor, "COUNT", count)
        return int(next_cursor), list(keys)

    def memory_usage(self, keys: Sequence[bytes]) -> list[int | None]:
        self.calls += 1
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.execute_command("MEMORY", "USAGE", key)
        results = pipe.execute(raise_on_error=False)
        sizes: list[int | None] = []
        for result in results:
            if isinstance(result, ResponseError):
                if _forbidden(result):
                    raise PermissionError(str(result))
                sizes.append(None)
            elif isinstance(result, Exception):
                raise result
            else:
                sizes.append(int(result) if result is not None else None)
        return sizes


def _call(client: Client, *args: Any) -> Any:
    """One command, its error reply raised."""
    return client.execute_command(*args)


def _try(client: Client, *args: Any) -> Any:
    """A command whose error reply is returned, not raised (a connection problem raises)."""
    (reply,) = client.run((args,))
    if isinstance(reply, Exception) and not isinstance(reply, ResponseError):
        raise reply
    return reply


def _is_response_error(error: Exception) -> bool:
    """An error reply from Redis (the command was refused), not a connection problem."""
    return isinstance(error, ResponseError)


def _forbidden(error: Exception) -> bool:
    """NOPERM (ACL), or the command renamed away / unknown on this server."""
    text = str(error).lower()
    return "noperm" in text or "unknown command" in text or "no permissions" in text


class RedisSource:
    """Polls one Redis server; logical caches come from the key census running beside it."""

    def __init__(
        self,
        settings: RedisSettings,
        *,
        name: str = SOURCE_NAME,
        backoff_initial: float = 1.0,
        backoff_max: float = 15.0,
        start_census: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.settings = settings
        self.node = settings
        """The settings of the server polled now (another one after a master switch)."""
        self.watch = MasterWatch(settings.sentinel, settings) if settings.sentinel else None
        self._follow_lock = threading.Lock()
        """Polls and census steps both ask the Sentinels; one switch at a time."""
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.clock = clock
        self.rounds = 0
        """Round trips made by polls (for tests and the benchmark)."""
        self._client: Client | None = None
        self._client_lock = threading.Lock()
        self._failures = 0
        self._retry_at = 0.0
        self._last_error = ""
        self._last_down_log = 0.0
        self._config: dict[str, float] = {}
        self._config_readable: bool | None = None
        self._config_due = 0.0
        self._info_args: tuple[str, ...] = INFO_SECTIONS
        self.mode = "standalone"
        """standalone, cluster (a cluster node) or sentinel, as the last INFO said."""
        self._refused: set[str] = set()
        self._census_families = CensusFamilies()
        self._census_caches: tuple[CensusReport, list[CacheSnapshot]] | None = None
        self._info_parser = InfoParser()
        """INFO parsed where it changed since the last poll."""
        self._info_memo = FamilyMemo()
        self._sentinel_memo = FamilyMemo()
        """The last poll's families, handed out again when their values did not change."""
        self._stop = threading.Event()
        self.census: KeyCensus | None = None
        self._census_thread: threading.Thread | None = None
        if settings.caches and settings.census_keys > 0:
            self.census = KeyCensus(
                settings.caches,
                keys_per_step=settings.census_keys,
                samples_per_step=settings.census_samples,
            )
            if start_census:
                self.start_census()

    # --- the client -------------------------------------------------------------------------
    @property
    def where(self) -> str:
        """The server, as logs name it (a Sentinel-managed master by its name too)."""
        if self.watch is None:
            return str(self.node.address)
        master = self.watch.master
        return f"master {self.watch.sentinel.master_name} ({master or 'not known yet'})"

    def client(self) -> Client:
        with self._client_lock:
            if self._client is None:
                self._client = connect(self.node)
            return self._client

    def _follow_master(self) -> None:
        with self._follow_lock:
            self._follow_master_now()

    def _follow_master_now(self) -> None:
        """Ask the Sentinels where the master is; move to it when it changed (a failover):
        a new client, the census on the new server, and one log line."""
        assert self.watch is not None
        master, before = self.watch.resolve()
        if (self.node.address.host, self.node.address.port) == (master.host, master.port):
            return
        old_client = None
        with self._client_lock:
            self.node = self.settings.at(master.host, master.port)
            old_client, self._client = self._client, None
        self.mode = "standalone"
        self._config_due = 0.0
        if old_client is not None:
            close_client(old_client)
        if before is None:
            log.info("Sentinels name %s as master %s", master, self.watch.sentinel.master_name)
            return
        log.warning(
            "redis master %s moved from %s to %s (failover); following it",
            self.watch.sentinel.master_name,
            before,
            master,
        )
        self._retry_at = 0.0
        if self.census is not None:
            self.census.restart()

    # --- polling ----------------------------------------------------------------------------
    def poll(self) -> SourceSnapshot:
        """A snapshot now. Never raises. Polls come one at a time from the poller, which
        shares the poll in flight among concurrent scrapes."""
        start = time.perf_counter()
        try:
            return self._poll_once(start)
        except Exception as exc:  # noqa: BLE001 - poll must never raise
            return self._failed(start, exc)

    def _poll_once(self, start: float) -> SourceSnapshot:
        if self.watch is not None:
            self._follow_master()  # even while backing off: a failover ends the outage
        now = self.clock()
        if now < self._retry_at:
            return self._down(start, self._last_error)
        client: Any = self.client()
        self.rounds += 1
        try:
            replies = self._round(client, now)
        except Exception as exc:
            if self._info_args in (("ALL",), ()) or not _is_response_error(exc):
                raise
            # Before Redis 7, INFO takes one section: ALL (the same, plus latencystats).
            log.debug("INFO with several sections refused (%s); using INFO ALL", exc)
            self._info_args = ("ALL",)
            replies = self._round(client, now)
        info, change = self._info_parser.parse(replies.info)
        if self._learn_mode(client, info, replies):
            replies = self._round(client, now)
            info, change = self._info_parser.parse(replies.info)
        sentinel_details = None
        if self.mode == "sentinel" and replies.sentinel_masters is not None:
            sentinel_details = fetch_master_details(client, masters_of(replies.sentinel_masters))
        self._recovered()
        return self._snapshot(start, info, change, replies, sentinel_details)

    def _round(self, client: Any, now: float) -> _Replies:
        """INFO, plus in the same round trip: CONFIG GET when it is due, CLUSTER INFO on a
        cluster node, SENTINEL MASTERS on a Sentinel."""
        config_due = now >= self._config_due and self.mode != "sentinel"
        if not config_due and self.mode == "standalone":
            return _Replies(_call(client, "INFO", *self._info_args))
        pipe = client.pipeline(transaction=False)
        pipe.execute_command("INFO", *self._info_args)
        if config_due:
            for name in CONFIG_NAMES:
                pipe.execute_command("CONFIG", "GET", name)
        if self.mode == "cluster":
            pipe.execute_command("CLUSTER", "INFO")
        if self.mode == "sentinel":
            pipe.execute_command("SENTINEL", "MASTERS")
        replies = pipe.execute(raise_on_error=False)
        if isinstance(replies[0], Exception):
            raise replies[0]
        rest = replies[1:]
        if config_due:
            self._read_config(rest[: len(CONFIG_NAMES)], now)
            rest = rest[len(CONFIG_NAMES) :]
        out = _Replies(replies[0])
        if self.mode == "cluster":
            out.cluster_info = self._optional(rest[0], "CLUSTER INFO")
        if self.mode == "sentinel":
            out.sentinel_masters = self._optional(rest[0], "SENTINEL MASTERS")
        return out

    def _learn_mode(self, client: Any, info: ParsedInfo, replies: _Replies) -> bool:
        """What kind of server this is, from its INFO; the first poll that learns it fetches
        what that kind adds (later polls pipeline it with INFO). True when the poll must be
        made again (a Sentinel answers its Sentinel section only to a plain INFO)."""
        fields = info.fields
        mode = "standalone"
        if (fields.get("redis_mode") or fields.get("server_mode")) == "sentinel":
            mode = "sentinel"
        elif fields.get("cluster_enabled") == "1":
            mode = "cluster"
        if mode == self.mode:
            return False
        log.debug("redis %s is a %s server", self.where, mode)
        self.mode = mode
        if mode == "cluster":
            replies.cluster_info = self._optional(_try(client, "CLUSTER", "INFO"), "CLUSTER INFO")
        elif mode == "sentinel":
            self._config_readable = None  # Sentinel has no CONFIG: not a restriction
            self._config = {}
            self._info_args = ()  # its default sections: server, clients, stats, cpu, sentinel
            return True
        return False

    def _optional(self, reply: Any, command: str) -> Any:
        """A reply the snapshot can do without: an error is logged once and left out."""
        if not isinstance(reply, Exception):
            return reply
        if not _is_response_error(reply):
            raise reply
        if command not in self._refused:
            self._refused.add(command)
            log.info(
                "%s is not allowed on redis %s (%s); carrying on without it",
                command,
                self.where,
                self._clean(reply),
            )
        return None

    def _read_config(self, replies: list[Any], now: float) -> None:
        config: dict[str, float] = {}
        for reply in replies:
            if isinstance(reply, Exception):
                if not _forbidden(reply):
                    raise reply
                if self._config_readable is not False:
                    log.info(
                        "CONFIG GET is not allowed on redis %s (%s); carrying on without it",
                        self.where,
                        self._clean(reply),
                    )
                self._config_readable = False
                self._config = {}
                self._config_due = now + CONFIG_FORBIDDEN_RETRY_SECONDS
                return
            if isinstance(reply, dict):
                for key, value in reply.items():
                    number = to_number(_text(value))
                    if number is not None:
                        config[_text(key)] = number
            elif isinstance(reply, list):
                for key, value in zip(reply[::2], reply[1::2], strict=False):
                    number = to_number(_text(value))
                    if number is not None:
                        config[_text(key)] = number
        self._config = config
        self._config_readable = True
        self._config_due = now + CONFIG_REFRESH_SECONDS

    def _snapshot(
        self,
        start: float,
        info: ParsedInfo,
        change: InfoChange | None,
        replies: _Replies,
        sentinel_details: list[MasterDetails] | None,
    ) -> SourceSnapshot:
        databases = int(self._config.get("databases", 0))
        db_indices = range(min(databases, 256)) if databases else (self.settings.address.db,)
        cluster_info = None
        if replies.cluster_info is not None:
            cluster_info = parse_info(_text(replies.cluster_info))
        families, skipped = info_families(
            info,
            config_maxmemory=self._config.get("maxmemory"),
            config_io_threads=self._config.get("io-threads"),
            db_indices=db_indices,
            cluster_info=cluster_info,
            memo=self._info_memo,
            change=change,
        )
        if sentinel_details:
            sentinel = FamilyBuilder(self._sentinel_memo)
            add_sentinel_masters(sentinel, sentinel_details)
            families += sentinel.families()
            skipped += sentinel.skipped
        up = catalog.REDIS_UP.family()
        up.add_metric([], 1)
        unparsed = catalog.REDIS_INFO_UNPARSED.family()
        unparsed.add_metric([], skipped)
        extra: list[Metric] = [up, *families, unparsed]
        if self._config_readable is not None:
            readable = catalog.REDIS_CONFIG_READABLE.family()
            readable.add_metric([], 1 if self._config_readable else 0)
            extra.append(readable)
        if self.watch is not None:
            extra.extend(self.watch.families())
        caches: list[CacheSnapshot] = []
        if self.census is not None:
            report = self.census.report()
            caches = self._caches(report)
            extra.extend(self._census_families.families(report))
        return SourceSnapshot(
            source=self.name,
            up=True,
            timestamp=time.time(),
            duration_seconds=time.perf_counter() - start,
            caches=caches,
            extra_families=extra,
        )

    def _caches(self, report: CensusReport) -> list[CacheSnapshot]:
        """The census's caches, the same objects while the report is (until the next step)."""
        kept = self._census_caches
        if kept is None or kept[0] is not report:
            kept = self._census_caches = (report, self._made_caches(report))
        return kept[1]

    def _made_caches(self, report: CensusReport) -> list[CacheSnapshot]:
        return [
            CacheSnapshot(
                name=estimate.name,
                source=self.name,
                size=round(estimate.size),
                memory_bytes=estimate.memory_bytes,
                counts_known=False,
            )
            for estimate in report.estimates
        ]

    # --- failures, backoff and quiet logs ---------------------------------------------------
    def _clean(self, error: BaseException | str) -> str:
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        return self.settings.redact(text)[:MAX_ERROR_LENGTH]

    def _failed(self, start: float, exc: Exception) -> SourceSnapshot:
        self._failures += 1
        self._last_error = self._clean(exc)
        delay = min(self.backoff_max, self.backoff_initial * 2 ** (self._failures - 1))
        now = self.clock()
        self._retry_at = now + delay
        if self._failures == 1:
            log.warning(
                "redis %s is down: %s; retrying with backoff up to %gs",
                self.where,
                self._last_error,
                self.backoff_max,
            )
            self._last_down_log = now
        elif now - self._last_down_log >= STILL_DOWN_LOG_EVERY:
            log.warning(
                "redis %s still down after %d failed polls: %s",
                self.where,
                self._failures,
                self._last_error,
            )
            self._last_down_log = now
        return self._down(start, self._last_error)

    def _recovered(self) -> None:
        if self._failures:
            log.info("redis %s is back after %d failed polls", self.where, self._failures)
        self._failures = 0
        self._retry_at = 0.0
        self._last_error = ""

    def _down(self, start: float, error: str) -> SourceSnapshot:
        up = catalog.REDIS_UP.family()
        up.add_metric([], 0)
        extra = [up, *(self.watch.families() if self.watch is not None else ())]
        return SourceSnapshot(
            source=self.name,
            up=False,
            timestamp=time.time(),
            duration_seconds=time.perf_counter() - start,
            extra_families=extra,
            error=error or "redis is down",
        )

    # --- the census thread ------------------------------------------------------------------
    def start_census(self) -> None:
        if self.census is None or self._census_thread is not None:
            return
        self._census_thread = threading.Thread(
            target=self._census_loop, name="cachewatch-census", daemon=True
        )
        self._census_thread.start()

    def census_step(self) -> None:
        """One census step now (the thread's body; tests and the benchmark call it directly)."""
        if self.census is None:
            return
        if self.watch is not None:
            self._follow_master()  # the census follows a failover between scrapes too
        memory_allowed = self.census.memory_allowed
        self.census.step(CensusCalls(self.client()))
        if memory_allowed and not self.census.memory_allowed:
            log.info(
                "MEMORY USAGE is not allowed on redis %s; cache memory is not estimated",
                self.where,
            )

    def _census_loop(self) -> None:
        census_loop(
            self._stop, self.census_step, self._census_failed, self.settings.census_interval
        )

    def _census_failed(self, exc: Exception) -> None:
        assert self.census is not None
        self.census.failed()
        log.debug("census step failed: %s", self._clean(exc))

    def close(self) -> None:
        self._stop.set()
        if self._census_thread is not None:
            self._census_thread.join(self.settings.connect_timeout + self.settings.socket_timeout)
        with self._client_lock:
            if self._client is not None:
                close_client(self._client)
                self._client = None
        if self.watch is not None:
            self.watch.close()


def close_client(client: Client) -> None:
    client.close()


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
