"""A real Zipkin v2 HTTP receiver for the tests: ``POST /api/v2/spans`` with a JSON array of
spans, checked against the Zipkin v2 model the way a collector does (hex ids of the right
length, microsecond timestamps, string tags), kept, and answered 202 as Zipkin does; a
malformed body is answered 400 and recorded, so that a test sees it."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .servers import LOOPBACK

PATH = "/api/v2/spans"
_HEX = re.compile(r"^[0-9a-f]+$")
KINDS = {"CLIENT", "SERVER", "PRODUCER", "CONSUMER"}


@dataclass
class ZipkinSpan:
    trace_id: str
    id: str
    parent_id: str | None
    name: str
    kind: str | None
    timestamp_us: int
    duration_us: int
    service_name: str
    tags: dict[str, str]


def _hex_id(value: Any, lengths: tuple[int, ...], what: str) -> str:
    if not isinstance(value, str) or len(value) not in lengths or not _HEX.match(value):
        raise ValueError(
            f"{what} must be {'/'.join(map(str, lengths))} lower-hex digits: {value!r}"
        )
    return value


def parse_span(raw: Any) -> ZipkinSpan:
    """One span of a Zipkin v2 JSON body, validated."""
    if not isinstance(raw, dict):
        raise ValueError("a span must be a JSON object")
    kind = raw.get("kind")
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind {kind!r}")
    for field in ("timestamp", "duration"):
        if not isinstance(raw.get(field), int) or raw[field] < 0:
            raise ValueError(f"{field} must be a non-negative integer of microseconds")
    endpoint = raw.get("localEndpoint")
    if not isinstance(endpoint, dict) or not isinstance(endpoint.get("serviceName"), str):
        raise ValueError("localEndpoint.serviceName is required")
    tags = raw.get("tags", {})
    if not isinstance(tags, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise ValueError("tags must map strings to strings")
    parent = raw.get("parentId")
    return ZipkinSpan(
        trace_id=_hex_id(raw.get("traceId"), (16, 32), "traceId"),
        id=_hex_id(raw.get("id"), (16,), "id"),
        parent_id=None if parent is None else _hex_id(parent, (16,), "parentId"),
        name=str(raw.get("name", "")),
        kind=kind,
        timestamp_us=raw["timestamp"],
        duration_us=raw["duration"],
        service_name=endpoint["serviceName"],
        tags=dict(tags),
    )


class ZipkinReceiver:
    """An HTTP server on ``127.0.0.1:<free port>`` that accepts Zipkin v2 JSON spans."""

    def __init__(self) -> None:
        self.spans: list[ZipkinSpan] = []
        self.rejected: list[str] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    if self.path != PATH:
                        raise ValueError(f"unknown path {self.path}")
                    if not self.headers.get("Content-Type", "").startswith("application/json"):
                        raise ValueError(f"content type {self.headers.get('Content-Type')!r}")
                    document = json.loads(body)
                    if not isinstance(document, list):
                        raise ValueError("the body must be a JSON array of spans")
                    parsed = [parse_span(item) for item in document]
                except ValueError as exc:
                    with receiver._lock:
                        receiver.rejected.append(str(exc))
                    self.send_response(400)
                    self.end_headers()
                    return
                with receiver._lock:
                    receiver.spans.extend(parsed)
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}{PATH}"

    def received(self) -> list[ZipkinSpan]:
        with self._lock:
            return list(self.spans)

    def wait_for(
        self, predicate: Callable[[list[ZipkinSpan]], bool], timeout: float = 10.0
    ) -> list[ZipkinSpan]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.rejected:
                raise AssertionError(f"the receiver rejected a body: {self.rejected}")
            spans = self.received()
            if predicate(spans):
                return spans
            time.sleep(0.05)
        raise TimeoutError(f"expected spans did not arrive; got {[s.name for s in self.spans]}")


@contextmanager
def zipkin_receiver() -> Iterator[ZipkinReceiver]:
    receiver = ZipkinReceiver()
    receiver._thread.start()
    try:
        yield receiver
    finally:
        receiver._server.shutdown()
        receiver._server.server_close()
