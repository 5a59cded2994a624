"""``/metrics``: a collector registry rendered as the scraper asks (text or OpenMetrics, with
exemplars), gzip when accepted, ``name[]`` filtering; identical concurrent scrapes share one
rendering (single flight), so fifty scrapers at once cost one poll and one encoding."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import exposition as text_exposition
from prometheus_client.registry import Collector

from ..exposition.encoders import encode
from ..singleflight import SingleFlight

StartResponse = Callable[..., Any]
MetricsApp = Callable[[dict[str, Any], StartResponse], list[bytes]]
Rendering = tuple[str, list[tuple[str, str]], bytes]

VARY = ("Vary", "Accept, Accept-Encoding")
"""The reply depends on both (text or OpenMetrics, gzip or not): a cache between Prometheus
and the exporter must not hand one scraper's reply to another that asked otherwise."""

GZIP_LEVEL = 1
"""Fast: 6x quicker than prometheus_client's level 9 in zlib, for a reply ~15% larger (Go's
client_golang, in redis_exporter, writes at gzip's default level, 6: twice our time)."""

_deflate: Any
try:
    from isal import isal_zlib as _deflate
except ImportError:  # no isal wheel for this platform: zlib, the same bytes out, slower
    import zlib as _deflate
"""ISA-L's deflate when it is installed (a dependency): a 39 KB reply took 62 us at its level
1 against 190-290 us at zlib's, and came out 3% smaller; zlib otherwise."""


def gzip_body(body: bytes) -> bytes:
    """``body`` gzipped, with mtime 0 as Go's gzip writes it: the gzip framing in the one
    deflate call (gzip.compress adds a CRC pass and two copies, 40% of its time)."""
    compressed: bytes = _deflate.compress(body, GZIP_LEVEL, wbits=31)
    return compressed


def render(registry: Collector, environ: dict[str, Any]) -> Rendering:
    """(status, headers, body) of one scrape of ``registry``."""
    params = parse_qs(environ.get("QUERY_STRING", ""))
    target = registry
    if "name[]" in params:
        target = registry.restricted_registry(params["name[]"])  # type: ignore[attr-defined]
    output, content_type = encode(list(target.collect()), environ.get("HTTP_ACCEPT", ""))
    headers = [("Content-Type", content_type), VARY]
    if text_exposition.gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", "")):
        output = gzip_body(output)
        headers.append(("Content-Encoding", "gzip"))
    headers.append(("Content-Length", str(len(output))))
    return "200 OK", headers, output


def make_metrics_app(
    registry: Collector, extra_headers: list[tuple[str, str]] | None = None
) -> MetricsApp:
    """A WSGI app for /metrics over ``registry``; HEAD gets the headers of a GET."""
    flight: SingleFlight[Rendering] = SingleFlight()
    extra = list(extra_headers or [])

    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        # What the rendering depends on: identical scrapes share one rendering.
        key = (
            environ.get("HTTP_ACCEPT"),
            environ.get("HTTP_ACCEPT_ENCODING"),
            environ.get("QUERY_STRING", ""),
        )
        status, headers, body = flight.do(key, lambda: render(registry, environ))
        start_response(status, headers + extra)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    return app
