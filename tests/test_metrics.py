"""/metrics rendering: negotiation and gzip, with ISA-L's deflate when it is installed."""

from __future__ import annotations

import gzip
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter

from cachewatch.web import metrics


def test_isal_is_the_deflate_in_use() -> None:
    """isal is a dependency: a missing wheel must not fall back silently here."""
    assert metrics._deflate.__name__ == "isal.isal_zlib"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=100_000) | st.text(max_size=20_000).map(str.encode))
def test_a_gzipped_body_reads_back_with_mtime_zero(body: bytes) -> None:
    compressed = metrics.gzip_body(body)
    assert gzip.decompress(compressed) == body
    assert zlib.decompress(compressed, wbits=31) == body
    assert compressed[:3] == b"\x1f\x8b\x08" and compressed[4:8] == b"\0\0\0\0"


def test_a_scrape_that_accepts_gzip_gets_it_with_its_length() -> None:
    registry = CollectorRegistry()
    Counter("jobs", "Jobs done.", registry=registry).inc(3)
    environ = {"HTTP_ACCEPT": "", "HTTP_ACCEPT_ENCODING": "gzip", "QUERY_STRING": ""}
    status, headers, body = metrics.render(registry, environ)
    found = dict(headers)
    assert status == "200 OK" and found["Content-Encoding"] == "gzip"
    assert int(found["Content-Length"]) == len(body)
    assert b"jobs_total 3.0" in gzip.decompress(body)
    _, plain_headers, plain = metrics.render(registry, {**environ, "HTTP_ACCEPT_ENCODING": ""})
    assert "Content-Encoding" not in dict(plain_headers) and gzip.decompress(body) == plain


def test_the_reply_says_it_varies_with_accept_and_accept_encoding() -> None:
    registry = CollectorRegistry()
    Counter("jobs", "Jobs done.", registry=registry).inc()
    for accept, encoding in (("", ""), ("application/openmetrics-text; version=1.0.0", "gzip")):
        environ = {"HTTP_ACCEPT": accept, "HTTP_ACCEPT_ENCODING": encoding, "QUERY_STRING": ""}
        _, headers, _ = metrics.render(registry, environ)
        assert dict(headers)["Vary"] == "Accept, Accept-Encoding"
