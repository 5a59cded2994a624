"""The HTTP server's limits: methods, sizes, bodies, malformed requests, slow clients,
internal failures (503, never 500) and graceful shutdown."""

from __future__ import annotations

import http.client
import logging
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import requests
from prometheus_client.registry import Collector

from cachewatch import Exporter
from cachewatch.web.httpd import MAX_HEADER_BYTES, MAX_HEADERS, MAX_REQUEST_LINE
from cachewatch.web.routes import make_wsgi_app
from cachewatch.web.server import HttpServer, serve


def exchange(port: int, request: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes, read until the server closes (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(request)
        received = b""
        while time.monotonic() < deadline:
            chunk = conn.recv(65536)
            if not chunk:
                return received
            received += chunk
    raise AssertionError(f"connection still open after {timeout}s: {received[:100]!r}")


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


@pytest.mark.parametrize(
    ("request_bytes", "expected"),
    [
        (b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", 413),
        (b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", 413),
        (b"PUT /-/reload HTTP/1.1\r\n\r\n", 405),
        (b"DELETE /health HTTP/1.1\r\n\r\n", 405),
        (b"OPTIONS * HTTP/1.1\r\n\r\n", 405),
        (b"GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 413),
        (b"GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 413),
        (b"GET /metrics HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 413),
        (b"GET /" + b"a" * MAX_REQUEST_LINE + b" HTTP/1.1\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nX-Big: " + b"v" * MAX_HEADER_BYTES + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * (MAX_HEADERS + 1) + b"\r\n", 431),
        (b"GET /\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\n\r\n", 400),
        (b"GET / HTTP/9\r\n\r\n", 400),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n folded: header\r\n\r\n", 400),
        (b"\r\n\r\n", 400),
        # Not malformed: answered, and the connection closes because the client asks.
        (b"GET /%00%ff/../metrics HTTP/1.1\r\nConnection: close\r\n\r\n", 404),
        (b"GET http://evil.example/metrics HTTP/1.1\r\nConnection: close\r\n\r\n", 404),
        (b"HEAD /metrics HTTP/1.0\r\n\r\n", 200),
        (b"GET /metrics?name[]=cache_gets_total&%zz=%%% HTTP/1.0\r\n\r\n", 200),
    ],
)
def test_bad_requests_get_4xx_and_the_connection_closes(
    http: HttpServer, request_bytes: bytes, expected: int
) -> None:
    response = exchange(http.port, request_bytes)
    assert status(response) == expected
    if request_bytes.startswith(b"HEAD"):
        assert response.endswith(b"\r\n\r\n")  # headers, no body


def test_a_silent_or_dribbling_client_is_disconnected(exporter: Exporter) -> None:
    server = serve(make_wsgi_app(exporter), "127.0.0.1", 0)
    server._server.request_timeout = 0.5
    try:
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as silent:
            assert silent.recv(100) == b""  # closed by the server
        assert time.monotonic() - start < 3
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as slow:
            slow.sendall(b"GET / HTTP/1.1\r\n")
            closed = False
            for _ in range(40):  # one header byte every 0.1 s: never a whole head
                try:
                    slow.sendall(b"X")
                except OSError:
                    closed = True
                    break
                time.sleep(0.1)
            if not closed:
                closed = slow.recv(100) == b""
        assert closed
        assert time.monotonic() - start < 3.5
        assert requests.get(f"http://127.0.0.1:{server.port}/health", timeout=5).ok
    finally:
        server.shutdown()


class _Broken(Collector):
    def collect(self) -> Iterator[Any]:
        raise RuntimeError("secret internal detail")


def test_internal_failures_are_503_with_a_generic_body_and_a_log_line(
    exporter: Exporter, http: HttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_query: Mapping[str, str]) -> tuple[int, Any]:
        raise ValueError("secret internal detail")

    exporter.add_route("/broken", "fails", broken)
    exporter.registry.register(_Broken())
    with caplog.at_level(logging.ERROR, logger="cachewatch.web.routes"):
        for path in ("/broken", "/metrics"):
            response = requests.get(f"http://127.0.0.1:{http.port}{path}", timeout=10)
            assert response.status_code == 503, path
            assert "secret" not in response.text
    assert sum("internal error serving" in r.getMessage() for r in caplog.records) == 2
    assert requests.get(f"http://127.0.0.1:{http.port}/health", timeout=10).status_code == 200


def test_shutdown_lets_an_in_flight_request_finish(exporter: Exporter) -> None:
    entered = threading.Event()

    def slow(_query: Mapping[str, str]) -> tuple[int, Any]:
        entered.set()
        time.sleep(0.5)
        return 200, {"done": True}

    exporter.add_route("/slow", "slow", slow)
    server = serve(make_wsgi_app(exporter), "127.0.0.1", 0)
    result: dict[str, Any] = {}

    def client() -> None:
        result["response"] = requests.get(f"http://127.0.0.1:{server.port}/slow", timeout=10)

    thread = threading.Thread(target=client)
    thread.start()
    assert entered.wait(5)
    start = time.monotonic()
    server.shutdown(timeout=2.0)
    elapsed = time.monotonic() - start
    thread.join(5)
    assert result["response"].json() == {"done": True}
    assert elapsed < 2.0
    assert server.active_connections == 0
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{server.port}/health", timeout=2)


def test_kept_alive_connections_are_bounded_in_time_and_closed_at_shutdown(
    exporter: Exporter,
) -> None:
    server = serve(make_wsgi_app(exporter), "127.0.0.1", 0)
    server._server.keep_alive_idle = 0.5
    server._server.request_timeout = 0.5
    try:
        # Idle after a request: closed after keep_alive_idle.
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as idle:
            idle.sendall(b"GET /health HTTP/1.1\r\n\r\n")
            start = time.monotonic()
            received = b""
            while chunk := idle.recv(65536):
                received += chunk
            assert received.startswith(b"HTTP/1.1 200")
            assert 0.3 < time.monotonic() - start < 3
        # A second request dribbled byte by byte: its head has request_timeout, like the first.
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as slow:
            slow.sendall(b"GET /health HTTP/1.1\r\n\r\n")
            slow.recv(65536)
            start = time.monotonic()
            closed = False
            for _ in range(40):
                try:
                    slow.sendall(b"G")
                    time.sleep(0.1)
                except OSError:
                    closed = True
                    break
            if not closed:
                try:
                    closed = slow.recv(65536) == b""
                except ConnectionResetError:
                    closed = True
            assert closed and time.monotonic() - start < 3
    finally:
        server.shutdown()
    # Shutdown does not wait for idle kept-alive connections.
    server = serve(make_wsgi_app(exporter), "127.0.0.1", 0)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/health")
    assert conn.getresponse().read()
    start = time.monotonic()
    server.shutdown(timeout=2.0)
    assert time.monotonic() - start < 1.0
    assert server.active_connections == 0
    conn.close()


def test_no_connection_is_kept_alive_while_the_server_is_busy(exporter: Exporter) -> None:
    server = serve(make_wsgi_app(exporter), "127.0.0.1", 0)
    conns = [http.client.HTTPConnection("127.0.0.1", server.port, timeout=10) for _ in range(70)]
    try:
        closing = []
        for conn in conns:
            conn.request("GET", "/health")
            response = conn.getresponse()
            response.read()
            closing.append(response.will_close)
        # The first half of the slots are kept alive; past that, answers say "close".
        assert closing[:60] == [False] * 60
        assert all(closing[66:])
    finally:
        for conn in conns:
            conn.close()
        server.shutdown()
