"""OTLP trace export requests written straight in protobuf's wire format.

Why hand-written, next to the exporter package's ``encode_spans``: that encoder builds a
protobuf object for every span, attribute and value, and files each span under its Resource
in a dict, which hashes the Resource by JSON-dumping its attributes once per span. On the
2-core bench machine it took 43-62 µs an SDK span, more than making the span, in the
export thread that shares the application's GIL: at 1% sampling that thread took ~600 ns
of every instrumented lookup (bench/instrument.py). For the spans an instrumented lookup
makes, the library's encoder takes 28.9 µs a span and this module 5.7 µs (``python
bench/otlp_encode.py``, fastest of 15 rounds).

The bytes are the library's, field for field and in the same order: ``encode_request(spans)
== encode_spans(spans).SerializeToString()``, which tests/test_otlp_wire.py checks over
generated spans (every attribute type, events, links, statuses, trace states, parents,
scopes, resources). An attribute the library would leave out (an int outside int64, a value
of no OTLP type) is left out here too, and logged; anything else this module cannot encode
raises, and the exporter falls back to the library's encoder for that batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from struct import Struct
from typing import Any

log = logging.getLogger("cachewatch.tracing")

_FIXED64: Callable[[int], bytes] = Struct("<Q").pack
_FIXED32: Callable[[int], bytes] = Struct("<I").pack
_DOUBLE: Callable[[float], bytes] = Struct("<d").pack
_ONE_BYTE = [bytes((n,)) for n in range(128)]
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_UINT64 = 1 << 64

_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200
"""``SpanFlags``: the library sets the first on every span and link, the second when the
parent (a link's span) is remote."""
_FLAGS_LOCAL = b"\x85\x01" + _FIXED32(_HAS_IS_REMOTE)
_FLAGS_REMOTE = b"\x85\x01" + _FIXED32(_HAS_IS_REMOTE | _IS_REMOTE)
_LINK_FLAGS_LOCAL = b"\x35" + _FIXED32(_HAS_IS_REMOTE)
_LINK_FLAGS_REMOTE = b"\x35" + _FIXED32(_HAS_IS_REMOTE | _IS_REMOTE)

# Tags (field number << 3 | wire type) of the fields written here, by message.
_SPAN_ATTRIBUTE = b"\x4a"  # Span.attributes = 9
_EVENT_ATTRIBUTE = b"\x1a"  # Span.Event.attributes = 3
_LINK_ATTRIBUTE = b"\x22"  # Span.Link.attributes = 4
_RESOURCE_ATTRIBUTE = b"\x0a"  # Resource.attributes = 1
_SCOPE_ATTRIBUTE = b"\x1a"  # InstrumentationScope.attributes = 3
_LIST_VALUE = b"\x0a"  # KeyValueList.values = 1, ArrayValue.values = 1

_PAIRS: dict[tuple[bytes, str, type, object], bytes] = {}
"""Encoded attributes (tag, key, value's type, value) for str, bool and int values: a cache
operation's spans repeat a handful of them. Floats are not kept (0.0 == -0.0). Emptied when
it reaches ``_PAIRS_LIMIT`` (keys of high cardinality)."""
_PAIRS_LIMIT = 4096


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _ONE_BYTE[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _framed(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return tag + _varint(len(payload)) + payload


def _int64(value: int) -> bytes:
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError(f"{value} is outside int64")
    return _varint(value + _UINT64 if value < 0 else value)


def _any_value(value: Any) -> bytes:
    """An ``AnyValue``'s fields, in the order of the library's ``_encode_value`` checks."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _framed(b"\x0a", value.encode())
    if isinstance(value, int):
        return b"\x18" + _int64(value)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, bytes):
        return _framed(b"\x3a", value)
    if isinstance(value, Sequence):
        array = b"".join([_framed(_LIST_VALUE, _any_value(item)) for item in value])
        return _framed(b"\x2a", array)
    if isinstance(value, Mapping):
        pairs = b"".join([_key_value(_LIST_VALUE, str(k), v) for k, v in value.items()])
        return _framed(b"\x32", pairs)
    raise TypeError(f"invalid type {type(value).__name__} of value {value!r}")


def _key_value(tag: bytes, key: str, value: Any) -> bytes:
    name = key.encode()
    body = _framed(b"\x0a", name) if name else b""
    return _framed(tag, body + _framed(b"\x12", _any_value(value)))


def _attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
    """Every attribute as a ``KeyValue`` field ``tag``; one the library would leave out (its
    ``_encode_attributes`` logs and skips what fails) is logged and left out."""
    if not attributes:
        return b""
    pairs = _PAIRS
    out = []
    for key, value in attributes.items():
        kind = type(value)
        cacheable = kind is str or kind is bool or kind is int
        if cacheable:
            found = pairs.get((tag, key, kind, value))
            if found is not None:
                out.append(found)
                continue
        try:
            encoded = _key_value(tag, key, value)
        except (TypeError, ValueError, OverflowError, UnicodeError) as error:
            log.warning("span attribute %s cannot be encoded (%s); it is left out", key, error)
            continue
        if cacheable:
            if len(pairs) >= _PAIRS_LIMIT:
                pairs.clear()
            pairs[(tag, key, kind, value)] = encoded
        out.append(encoded)
    return b"".join(out)


_KIND: dict[int, bytes] = {kind: b"\x30" + _ONE_BYTE[kind + 1] for kind in range(5)}
"""``Span.kind`` by the SDK's ``SpanKind`` value: OTLP counts from 1 (INTERNAL) where the
SDK counts from 0."""


def _trace_state(state: Any) -> bytes:
    if state is None:
        return b""
    text = ",".join([f"{key}={value}" for key, value in state.items()])
    return _framed(b"\x1a", text.encode()) if text else b""


def _status(status: Any) -> bytes:
    if status is None:
        return b""
    description = status.description
    body = _framed(b"\x12", description.encode()) if description else b""
    code = status.status_code.value
    if code:
        body += b"\x18" + _varint(code)
    return _framed(b"\x7a", body)


def _events(events: Sequence[Any]) -> bytes:
    out = []
    for event in events:
        body = b"\x09" + _FIXED64(event.timestamp) if event.timestamp else b""
        name = event.name.encode()
        if name:
            body += _framed(b"\x12", name)
        body += _attributes(_EVENT_ATTRIBUTE, event.attributes)
        if event.dropped_attributes:
            body += b"\x20" + _varint(event.dropped_attributes)
        out.append(_framed(b"\x5a", body))
    return b"".join(out)


def _links(links: Sequence[Any]) -> bytes:
    out = []
    for link in links:
        context = link.context
        body = (
            b"\x0a\x10"
            + context.trace_id.to_bytes(16, "big")
            + b"\x12\x08"
            + context.span_id.to_bytes(8, "big")
            + _attributes(_LINK_ATTRIBUTE, link.attributes)
        )
        if link.dropped_attributes:
            body += b"\x28" + _varint(link.dropped_attributes)
        body += _LINK_FLAGS_REMOTE if context.is_remote else _LINK_FLAGS_LOCAL
        out.append(_framed(b"\x6a", body))
    return b"".join(out)


def _span(span: Any, names: dict[str, bytes], statuses: dict[int, bytes]) -> bytes:
    """One ``Span``, framed as ``ScopeSpans.spans`` (field 2). ``names`` and ``statuses``
    keep, for one request, what its spans repeat: their names, and their status objects
    (by identity: the SDK shares one for every span whose status was never set)."""
    context = span.get_span_context()
    parts = [
        b"\x0a\x10",
        context.trace_id.to_bytes(16, "big"),
        b"\x12\x08",
        context.span_id.to_bytes(8, "big"),
    ]
    state = context.trace_state
    if state:
        parts.append(_trace_state(state))
    parent = span.parent
    if parent:
        parts += (b"\x22\x08", parent.span_id.to_bytes(8, "big"))
    name = span.name
    framed_name = names.get(name)
    if framed_name is None:
        encoded = name.encode()
        framed_name = names[name] = _framed(b"\x2a", encoded) if encoded else b""
    parts.append(framed_name)
    parts.append(_KIND[span.kind.value])
    start = span.start_time
    if start:
        parts += (b"\x39", _FIXED64(start))
    end = span.end_time
    if end:
        parts += (b"\x41", _FIXED64(end))
    attributes = span.attributes
    if attributes:
        parts.append(_attributes(_SPAN_ATTRIBUTE, attributes))
    dropped = span.dropped_attributes
    if dropped:
        parts += (b"\x50", _varint(dropped))
    events = span.events
    if events:
        parts.append(_events(events))
    dropped = span.dropped_events
    if dropped:
        parts += (b"\x60", _varint(dropped))
    links = span.links
    if links:
        parts.append(_links(links))
    dropped = span.dropped_links
    if dropped:
        parts += (b"\x70", _varint(dropped))
    status = span.status
    framed_status = statuses.get(id(status))
    if framed_status is None:
        framed_status = statuses[id(status)] = _status(status)
    parts.append(framed_status)
    parts.append(_FLAGS_REMOTE if parent and parent.is_remote else _FLAGS_LOCAL)
    body = b"".join(parts)
    size = len(body)
    return b"\x12" + (_ONE_BYTE[size] if size < 0x80 else _varint(size)) + body


def _scope(scope: Any) -> bytes:
    """``ScopeSpans.scope`` (field 1), set even when there is no scope, as the library does."""
    if scope is None:
        return b"\x0a\x00"
    body = b""
    if scope.name:
        body += _framed(b"\x0a", scope.name.encode())
    if scope.version:
        body += _framed(b"\x12", scope.version.encode())
    body += _attributes(_SCOPE_ATTRIBUTE, scope.attributes)
    return _framed(b"\x0a", body)


def encode_request(spans: Sequence[Any]) -> bytes:
    """The serialised ``ExportTraceServiceRequest`` of ``spans`` (SDK ``ReadableSpan``\\ s),
    grouped by resource, then by instrumentation scope, in order of first appearance.

    Consecutive spans of the same resource and scope objects (all of a provider's) are filed
    without hashing either: a Resource hashes by dumping its attributes to JSON."""
    groups: dict[Any, dict[Any, list[bytes]]] = {}
    last_resource: Any = None
    last_scope: Any = None
    filed: list[bytes] | None = None
    names: dict[str, bytes] = {}
    statuses: dict[int, bytes] = {}  # the spans hold their statuses alive meanwhile
    for span in spans:
        resource = span.resource
        scope = span.instrumentation_scope or None
        if filed is None or resource is not last_resource or scope is not last_scope:
            filed = groups.setdefault(resource, {}).setdefault(scope, [])
            last_resource, last_scope = resource, scope
        filed.append(_span(span, names, statuses))
    out = []
    for resource, scopes in groups.items():
        body = [_framed(b"\x0a", _attributes(_RESOURCE_ATTRIBUTE, resource.attributes))]
        for scope, encoded in scopes.items():
            scope_spans = _scope(scope) + b"".join(encoded)
            schema = scope.schema_url if scope is not None else None
            if schema:
                scope_spans += _framed(b"\x1a", schema.encode())
            body.append(_framed(b"\x12", scope_spans))
        if resource.schema_url:
            body.append(_framed(b"\x1a", resource.schema_url.encode()))
        out.append(_framed(b"\x0a", b"".join(body)))
    return b"".join(out)
