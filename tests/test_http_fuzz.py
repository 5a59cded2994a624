"""HTTP fuzzing against a running exporter: whatever the method, path, query and headers, the
answer is a well-formed response below 500 and the connection is closed — never a 500,
never a hang."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import cachewatch
from cachewatch import CacheRegistry, Exporter
from cachewatch.config import Config
from cachewatch.sources.local import LocalSource
from cachewatch.web.routes import make_wsgi_app
from cachewatch.web.server import HttpServer, serve

TIMEOUT = 10.0
fuzz = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)


@pytest.fixture(scope="module")
def server() -> Iterator[HttpServer]:
    registry = CacheRegistry()
    cache = cachewatch.instrument({}, "fuzzed", registry=registry, latency_sample_every=1)
    cache["a"] = 1
    cache.get("a")
    cache.get("b")
    exporter = Exporter([LocalSource(registry)], caches=registry)
    exporter.attach_analysis(Config(sample_interval=0.2).analysis)  # /report and /alerts
    running = serve(make_wsgi_app(exporter), "127.0.0.1", 0)
    yield running
    running.shutdown()
    exporter.close()


def exchange(port: int, data: bytes) -> bytes:
    """Send ``data``, half-close, read until the server closes; fail if it does not in time."""
    deadline = time.monotonic() + TIMEOUT
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as conn:
        try:
            conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer and close before reading everything
        received = b""
        while time.monotonic() < deadline:
            try:
                chunk = conn.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
        else:
            raise AssertionError("the server kept the connection open")
    return received


def status_of(response: bytes) -> int:
    assert response.startswith(b"HTTP/1."), response[:80]
    return int(response.split(b" ", 2)[1])


token = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_!#$%&'*+.^`|~",
    min_size=1,
    max_size=12,
)
methods = st.one_of(
    st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "CONNECT", "get"]),
    token,
)
paths = st.one_of(
    st.sampled_from(["/", "/metrics", "/health", "/report", "/alerts", "/probe"]),
    st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="?#"),
        max_size=60,
    ).map(lambda p: "/" + p),
    st.binary(max_size=40).map(lambda b: "/" + "".join(f"%{c:02x}" for c in b)),
)
queries = st.one_of(
    st.just(""),
    st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="#"),
        max_size=80,
    ).map(lambda q: "?" + q),
    st.lists(
        st.tuples(
            st.one_of(st.just("limit"), st.just("target"), st.just("name[]"), token),
            st.one_of(st.text(max_size=20), st.integers().map(str), st.just("9" * 5000)),
        ),
        max_size=5,
    ).map(lambda pairs: "?" + "&".join(f"{k}={v}" for k, v in pairs)),
)
header_names = st.one_of(
    st.sampled_from(
        ["Accept", "Accept-Encoding", "Authorization", "Host", "Connection", "Expect",
         "Content-Type", "Range", "If-None-Match", "X-Forwarded-For", "User-Agent"]
    ),
    token,
)  # fmt: skip
header_values = st.one_of(
    st.sampled_from(
        ["application/openmetrics-text; version=1.0.0; escaping=underscores",
         "application/openmetrics-text; version=9", "text/plain;version=0.0.4;q=x",
         "*/*;q=0.5, application/openmetrics-text;q=1", "gzip, deflate, br;q=0", "gzip;q=",
         "100-continue", "keep-alive", "Basic Og==", "bytes=0-1", ";;;,,,", "=" * 50]
    ),
    st.text(
        alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
        max_size=60,
    ),
)  # fmt: skip
versions = st.sampled_from(["HTTP/1.0", "HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.2", "HTTP/0.9"])


@fuzz
@given(
    method=methods,
    path=paths,
    query=queries,
    version=versions,
    headers=st.lists(st.tuples(header_names, header_values), max_size=8),
)
@example(method="GET", path="/metrics", query="?name[]=", version="HTTP/1.1", headers=[])
@example(
    method="GET",
    path="/metrics",
    query="",
    version="HTTP/1.1",
    headers=[("Accept", "application/openmetrics-text; version=1.0.0; escaping=nonsense")],
)
@example(
    method="GET",
    path="/metrics",
    query="",
    version="HTTP/1.1",
    headers=[("Accept-Encoding", "gzip"), ("Accept", "application/openmetrics-text")],
)
def test_structured_requests_never_get_a_5xx(
    server: HttpServer,
    method: str,
    path: str,
    query: str,
    version: str,
    headers: list[tuple[str, str]],
) -> None:
    lines = [f"{method} {path}{query} {version}"] + [f"{k}: {v}" for k, v in headers]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    response = exchange(server.port, data)
    status = status_of(response)
    assert status < 500, response[:300]
    if method in ("GET", "HEAD") and version in ("HTTP/1.0", "HTTP/1.1") and status == 200:
        _, _, body = response.partition(b"\r\n\r\n")
        assert (body == b"") == (method == "HEAD")


@fuzz
@given(data=st.binary(min_size=1, max_size=400))
@example(data=b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
@example(data=b"GET / HTTP/1.1\r\nX: a\rInjected: b\r\n\r\n")
@example(data=b"GET /metrics HTTP/1.1\nHost: bare-newlines\n\n")
@example(data=b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03")  # a TLS ClientHello
@example(data=b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")  # the HTTP/2 preface
def test_arbitrary_bytes_never_get_a_5xx_or_a_hang(server: HttpServer, data: bytes) -> None:
    response = exchange(server.port, data)
    if response:  # a connection closed without a word is acceptable for garbage
        assert status_of(response) < 500, response[:300]


def test_the_server_still_serves_after_the_fuzzing(server: HttpServer) -> None:
    for path in ("/report", "/alerts?limit=3", "/health"):
        assert status_of(exchange(server.port, f"GET {path} HTTP/1.1\r\n\r\n".encode())) == 200
    response = exchange(server.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(response) == 200
    assert b'cache_gets_total{cache="fuzzed",result="hit"} 1.0' in response
    deadline = time.monotonic() + 5  # the handler thread finishes just after closing
    while server.active_connections and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.active_connections == 0  # no connection left behind by the fuzzing
