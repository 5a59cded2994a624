"""HTTP/1.1 keep-alive: several scrapes on one connection, as Prometheus makes them."""

from __future__ import annotations

import http.client as httplib

from cachewatch.web.server import HttpServer


def test_several_requests_share_one_connection(http: HttpServer) -> None:
    conn = httplib.HTTPConnection("127.0.0.1", http.port, timeout=10)
    try:
        sockets = set()
        for path in ("/metrics", "/health", "/", "/metrics", "/nope"):
            conn.request("GET", path, headers={"Accept-Encoding": "gzip"})
            response = conn.getresponse()
            body = response.read()
            assert response.version == 11
            assert int(response.headers["Content-Length"]) == len(body)
            assert response.status == (404 if path == "/nope" else 200) or path == "/health"
            sockets.add(id(conn.sock))
        conn.request("HEAD", "/metrics")
        head = conn.getresponse()
        assert head.read() == b"" and head.status == 200
        conn.request("GET", "/metrics")
        plain = conn.getresponse()
        assert plain.read().startswith(b"# HELP") and plain.getheader("Connection") is None
        assert len(sockets) == 1  # never reconnected
    finally:
        conn.close()


def test_a_request_with_a_body_closes_the_connection(http: HttpServer) -> None:
    conn = httplib.HTTPConnection("127.0.0.1", http.port, timeout=10)
    try:
        conn.request("POST", "/metrics", body=b"x" * 10)
        response = conn.getresponse()
        assert response.status == 413  # bodies are refused before routing
        response.read()
        assert response.headers.get("Connection") == "close" and response.will_close
    finally:
        conn.close()
