"""redis-py instrumentation: per logical cache (by key prefix) hits, misses, puts, removals,
latency, errors and spans, for ``redis.Redis`` and ``redis.asyncio.Redis``, pipelines too.

``instrument_redis(client, caches={"embedding_cache": "embedding:"})`` hooks the client's
``execute_command`` and ``pipeline`` on the instance, so every command the client sends is
seen once. redis itself is never imported here: the caller already has a client.

Keys that match no prefix are counted under one fallback cache name (``unmatched`` unless
told otherwise, or not at all with ``fallback=None``), never under a name of their own.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Any, TypeVar

from ..tracing import attributes as _attr
from ..tracing import spans as _tracing
from .recorder import CacheRecorder
from .table import CacheTable, default_table

DEFAULT_FALLBACK = "unmatched"
PIPELINE = "pipeline"
_HOOKED = "_cachewatch_redis"
ClientT = TypeVar("ClientT")


# --- what each command means for a cache -----------------------------------------------------
@dataclass(frozen=True)
class CommandSpec:
    """How a command touches cache entries: which arguments are keys and what it counts."""

    kind: str  # "lookup" | "put" | "remove"
    keys: str  # "one": args[1]; "all": args[1:]; "pairs": args[1::2]
    outcome: str  # how the reply tells the outcome (see ``_count``)


_LOOKUP_ONE = {
    "GET": "value", "GETEX": "value", "GETDEL": "value_removes", "HGET": "value",
    "HGETALL": "nonempty", "HEXISTS": "truthy", "HMGET": "per_item",
}  # fmt: skip
_PUTS_ONE = {
    "SET": "set", "SETEX": "always", "PSETEX": "always", "SETNX": "truthy", "GETSET": "always",
    "HSET": "always", "HSETNX": "truthy", "HMSET": "always", "APPEND": "always",
}  # fmt: skip
COMMANDS: dict[str, CommandSpec] = {
    **{name: CommandSpec("lookup", "one", how) for name, how in _LOOKUP_ONE.items()},
    "MGET": CommandSpec("lookup", "all", "per_item"),
    "EXISTS": CommandSpec("lookup", "all", "count"),
    **{name: CommandSpec("put", "one", how) for name, how in _PUTS_ONE.items()},
    "MSET": CommandSpec("put", "pairs", "always"),
    "MSETNX": CommandSpec("put", "pairs", "truthy"),
    "DEL": CommandSpec("remove", "all", "count"),
    "UNLINK": CommandSpec("remove", "all", "count"),
    "HDEL": CommandSpec("remove", "one", "count"),
}
"""The commands counted; any other command passes through (and is traced when sampled)."""


_PARSED: dict[Any, tuple[str, str, CommandSpec | None]] = {}
_MAX_PARSED = 1024


def _parse_command(args: Sequence[Any]) -> tuple[str, str, CommandSpec | None]:
    """(COMMAND, operation label, spec) of a command, memoised by its first argument."""
    raw = args[0] if args else ""
    try:
        return _PARSED[raw]
    except (KeyError, TypeError):
        pass
    name = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)
    name = name.upper()
    parsed = (name, name.lower(), COMMANDS.get(name))
    if len(_PARSED) < _MAX_PARSED and isinstance(raw, (str, bytes)):
        _PARSED[raw] = parsed
    return parsed


def _keys(spec: CommandSpec, args: Sequence[Any]) -> Sequence[Any]:
    if spec.keys == "one":
        return args[1:2]
    if spec.keys == "pairs":
        return args[1::2]
    return args[1:]


class _Prefixes:
    """Maps a key to the recorder of its logical cache: longest matching prefix wins."""

    def __init__(
        self, caches: Mapping[str, str | bytes | Iterable[str | bytes]], registry: CacheTable,
        fallback: str | None,
    ) -> None:  # fmt: skip
        entries: list[tuple[str, bytes, CacheRecorder]] = []
        for name, prefixes in caches.items():
            recorder = registry.recorder(name)
            if isinstance(prefixes, (str, bytes)):
                prefixes = [prefixes]
            for prefix in prefixes:
                text = prefix.decode() if isinstance(prefix, bytes) else str(prefix)
                if not text:
                    raise ValueError(f"cache {name!r}: a key prefix must not be empty")
                entries.append((text, text.encode(), recorder))
        entries.sort(key=lambda entry: len(entry[0]), reverse=True)
        self.entries = entries
        self.fallback = registry.recorder(fallback) if fallback is not None else None

    def recorder(self, key: Any) -> CacheRecorder | None:
        if isinstance(key, memoryview):
            key = bytes(key)
        if isinstance(key, bytes):
            for _, raw_prefix, found in self.entries:
                if key.startswith(raw_prefix):
                    return found
            return self.fallback
        text = key if isinstance(key, str) else str(key)
        for text_prefix, _, found in self.entries:
            if text.startswith(text_prefix):
                return found
        return self.fallback


def _server_attributes(client: Any) -> dict[str, Any]:
    """db.* and server.* span attributes from the connection settings (never credentials)."""
    pool = getattr(client, "connection_pool", None)
    kwargs: Mapping[str, Any] = getattr(pool, "connection_kwargs", {})
    attributes: dict[str, Any] = {_attr.DB_SYSTEM: "redis"}
    attributes[_attr.DB_NAMESPACE] = str(kwargs.get("db", 0))
    if kwargs.get("path"):
        attributes[_attr.SERVER_ADDRESS] = str(kwargs["path"])
    else:
        attributes[_attr.SERVER_ADDRESS] = str(kwargs.get("host", "localhost"))
        attributes[_attr.SERVER_PORT] = int(kwargs.get("port", 6379))
    return attributes


# --- one command ------------------------------------------------------------------------------
class _Command:
    """One command's classification: its spec, keys and the caches they belong to."""

    __slots__ = ("caches", "keys", "name", "operation", "spec")

    def __init__(self, args: Sequence[Any], prefixes: _Prefixes) -> None:
        self.name, self.operation, self.spec = _parse_command(args)
        if self.spec is None:
            self.keys: Sequence[Any] = ()
            self.caches: list[CacheRecorder | None] = []
        elif self.spec.keys == "one":
            self.keys = args[1:2]
            self.caches = [prefixes.recorder(args[1])] if len(args) > 1 else []
        else:
            self.keys = _keys(self.spec, args)
            self.caches = [prefixes.recorder(key) for key in self.keys]

    def involved(self) -> list[CacheRecorder]:
        """The distinct caches the command touches, in order."""
        caches = self.caches
        if len(caches) == 1:
            return [] if caches[0] is None else [caches[0]]
        seen: dict[int, CacheRecorder] = {}
        for recorder in self.caches:
            if recorder is not None:
                seen.setdefault(id(recorder), recorder)
        return list(seen.values())

    def count(self, result: Any, args: Sequence[Any]) -> bool | None:
        """Count the reply's outcome; returns hit/miss for a single-key lookup, else None."""
        spec = self.spec
        if spec is None:
            return None
        caches = self.caches
        how = spec.outcome
        if spec.kind == "lookup":
            if how == "per_item":
                return self._per_item(result)
            if how == "count":
                self._existing(int(result or 0), hit=True)
                return None
            hit = bool(result) if how in ("nonempty", "truthy") else result is not None
            recorder = caches[0] if caches else None
            if recorder is not None:
                (recorder.hit if hit else recorder.miss)()
                if how == "value_removes" and hit:
                    recorder.remove()
            return hit
        if spec.kind == "put":
            if how == "truthy" and not result:
                return None
            if how == "set" and result is None and not _has_get_option(args):
                return None  # NX/XX condition not met: nothing stored
            for recorder in caches:
                if recorder is not None:
                    recorder.put()
            return None
        self._existing(int(result or 0), hit=False)
        return None

    def _per_item(self, result: Any) -> bool | None:
        values = list(result or ())
        if self.spec is not None and self.spec.keys == "one":
            owner_of_all = self.caches[0] if self.caches else None
            owners: list[CacheRecorder | None] = [owner_of_all] * len(values)
        else:
            owners = list(self.caches)
        for owner, item in zip(owners, values, strict=False):
            if owner is not None:
                (owner.hit if item is not None else owner.miss)()
        return None

    def _existing(self, found: int, *, hit: bool) -> None:
        """EXISTS and DEL reply with a total. It is exact per cache when every key belongs to
        one cache; keys spread over several caches are counted per key for DEL (requested
        removals) and not at all for EXISTS, which cannot be split."""
        involved = self.involved()
        if not involved:
            return
        if len(involved) == 1 and None not in self.caches:
            only = involved[0]
            if hit:
                only.count(hits=found, misses=max(0, len(self.keys) - found))
            else:
                only.count(removals=found)
            return
        if not hit:
            for recorder in self.caches:
                if recorder is not None:
                    recorder.remove()


def _has_get_option(args: Sequence[Any]) -> bool:
    return any(
        isinstance(arg, (str, bytes)) and (arg.upper() in ("GET", b"GET")) for arg in args[3:]
    )


# --- the watcher: shared by the sync and asyncio wrappers ------------------------------------
class RedisWatcher:
    """Counts, times and traces the commands of one redis-py client."""

    def __init__(self, client: Any, prefixes: _Prefixes) -> None:
        self.prefixes = prefixes
        self.server = _server_attributes(client)

    # a single command
    def begin(self, args: Sequence[Any]) -> tuple[_Command, _tracing.Span | None]:
        command = _Command(args, self.prefixes)
        span = None
        if _tracing.TRACING and _tracing.sample():
            span = self._span(command.name, [command], args)
        return command, span

    def _span(
        self, name: str, commands: Sequence[_Command], args: Sequence[Any] | None
    ) -> _tracing.Span | None:
        caches = {id(r): r for c in commands for r in c.involved()}
        attributes = dict(self.server)
        attributes[_attr.DB_OPERATION] = name
        if len(caches) == 1:
            cache = next(iter(caches.values())).name
            key = commands[0].keys[0] if args is not None and commands[0].keys else None
            attributes.update(_tracing.cache_attributes(cache, name.lower(), key))
            span_name = f"{name} {cache}"
        else:
            span_name = name
        if args is None:
            attributes[_attr.DB_BATCH_SIZE] = len(commands)
        return _tracing.start_span(span_name, attributes, client=True)

    def finish(
        self,
        command: _Command,
        span: _tracing.Span | None,
        args: Sequence[Any],
        elapsed: float,
        result: Any = None,
        error: BaseException | None = None,
    ) -> None:
        trace_id = span.trace_id if span is not None else None
        involved = command.involved() if command.spec is not None else []
        for recorder in involved:
            recorder.observe(command.operation, elapsed, trace_id)
        if error is not None:
            for recorder in involved:
                recorder.error(command.operation, error)
        else:
            hit = command.count(result, args)
            if span is not None and hit is not None:
                span.set(_attr.CACHE_HIT, hit)
        if span is not None:
            span.end(error)

    # a pipeline
    def begin_pipeline(
        self, stack: Sequence[Sequence[Any]]
    ) -> tuple[list[_Command], _tracing.Span | None]:
        commands = [_Command(args, self.prefixes) for args in stack]
        span = None
        if commands and _tracing.TRACING and _tracing.sample():
            span = self._span("PIPELINE", commands, None)
        return commands, span

    def finish_pipeline(
        self,
        commands: Sequence[_Command],
        stack: Sequence[Sequence[Any]],
        span: _tracing.Span | None,
        elapsed: float,
        results: Sequence[Any] | None = None,
        error: BaseException | None = None,
    ) -> None:
        """Counts each command by its own reply; the latency of the round trip is observed
        once per cache involved, as operation ``pipeline``."""
        trace_id = span.trace_id if span is not None else None
        involved = {id(r): r for c in commands if c.spec is not None for r in c.involved()}
        for recorder in involved.values():
            recorder.observe(PIPELINE, elapsed, trace_id)
        if error is not None or results is None:
            for recorder in involved.values():
                recorder.error(PIPELINE, error or RuntimeError("no reply"))
        else:
            for command, args, result in zip(commands, stack, results, strict=False):
                if isinstance(result, Exception):
                    for recorder in command.involved():
                        recorder.error(command.operation, result)
                else:
                    command.count(result, args)
        if span is not None:
            span.end(error)


def _queued(pipe: Any) -> list[Sequence[Any]]:
    """The argument tuples of a pipeline's queued commands: ``(args, options)`` pairs in
    redis-py's pipelines, objects with ``.args`` in its cluster pipeline."""
    queued: list[Sequence[Any]] = []
    for item in pipe.command_stack:
        args = getattr(item, "args", None)
        queued.append(args if args is not None else item[0])
    return queued


# --- hooking a client -------------------------------------------------------------------------
def _timed_command(raw: Callable[..., Any], watcher: RedisWatcher) -> Callable[..., Any]:
    """``raw`` (a client's or pipeline's immediate command) with counts, latency and a span."""

    def call(*args: Any, **options: Any) -> Any:
        command, span = watcher.begin(args)
        start = perf_counter()
        try:
            result = raw(*args, **options)
        except Exception as exc:
            watcher.finish(command, span, args, perf_counter() - start, error=exc)
            raise
        watcher.finish(command, span, args, perf_counter() - start, result)
        return result

    return call


def _timed_command_async(raw: Callable[..., Any], watcher: RedisWatcher) -> Callable[..., Any]:
    """The asyncio twin of ``_timed_command``."""

    async def call(*args: Any, **options: Any) -> Any:
        command, span = watcher.begin(args)
        start = perf_counter()
        try:
            result = await raw(*args, **options)
        except Exception as exc:
            watcher.finish(command, span, args, perf_counter() - start, error=exc)
            raise
        watcher.finish(command, span, args, perf_counter() - start, result)
        return result

    return call


def _hook_sync(client: Any, watcher: RedisWatcher) -> None:
    raw_pipeline = type(client).pipeline.__get__(client)

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = raw_pipeline(*args, **kwargs)
        _hook_sync_pipeline(pipe, watcher)
        return pipe

    client.execute_command = _timed_command(type(client).execute_command.__get__(client), watcher)
    client.pipeline = pipeline


def _hook_sync_pipeline(pipe: Any, watcher: RedisWatcher) -> None:
    raw_execute = pipe.execute

    def execute(*args: Any, **kwargs: Any) -> Any:
        stack = _queued(pipe)
        commands, span = watcher.begin_pipeline(stack)
        start = perf_counter()
        try:
            results = raw_execute(*args, **kwargs)
        except Exception as exc:
            watcher.finish_pipeline(commands, stack, span, perf_counter() - start, error=exc)
            raise
        watcher.finish_pipeline(commands, stack, span, perf_counter() - start, results)
        return results

    pipe.execute = execute
    pipe.immediate_execute_command = _timed_command(pipe.immediate_execute_command, watcher)


def _hook_async(client: Any, watcher: RedisWatcher) -> None:
    raw_pipeline = type(client).pipeline.__get__(client)

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = raw_pipeline(*args, **kwargs)
        _hook_async_pipeline(pipe, watcher)
        return pipe

    client.execute_command = _timed_command_async(
        type(client).execute_command.__get__(client), watcher
    )
    client.pipeline = pipeline


def _hook_async_pipeline(pipe: Any, watcher: RedisWatcher) -> None:
    raw_execute = pipe.execute

    async def execute(*args: Any, **kwargs: Any) -> Any:
        stack = _queued(pipe)
        commands, span = watcher.begin_pipeline(stack)
        start = perf_counter()
        try:
            results = await raw_execute(*args, **kwargs)
        except Exception as exc:
            watcher.finish_pipeline(commands, stack, span, perf_counter() - start, error=exc)
            raise
        watcher.finish_pipeline(commands, stack, span, perf_counter() - start, results)
        return results

    pipe.execute = execute
    pipe.immediate_execute_command = _timed_command_async(pipe.immediate_execute_command, watcher)


def instrument_redis(
    client: ClientT,
    caches: Mapping[str, str | bytes | Iterable[str | bytes]],
    *,
    fallback: str | None = DEFAULT_FALLBACK,
    registry: CacheTable | None = None,
) -> ClientT:
    """Count a redis-py client's cache traffic per logical cache and return the client.

    ``caches`` maps a logical cache name to its key prefix (or several). Works for
    ``redis.Redis`` and ``redis.asyncio.Redis`` and the pipelines they make afterwards.
    Instrumenting the same client again replaces the earlier mapping.
    """
    if not caches:
        raise ValueError("instrument_redis() needs at least one cache name and key prefix")
    kind: Callable[[Any, RedisWatcher], None]
    execute = getattr(type(client), "execute_command", None)
    if execute is None or not callable(getattr(type(client), "pipeline", None)):
        raise TypeError(
            f"instrument_redis() needs a redis.Redis or redis.asyncio.Redis client, "
            f"not {type(client).__name__}"
        )
    kind = _hook_async if inspect.iscoroutinefunction(execute) else _hook_sync
    prefixes = _Prefixes(caches, registry or default_table(), fallback)
    watcher = RedisWatcher(client, prefixes)
    kind(client, watcher)
    setattr(client, _HOOKED, watcher)
    return client
