"""HTTP endpoints: a landing page, /metrics, and the exporter's JSON routes.

Only GET and HEAD; unknown paths are 404, other methods 405, malformed requests 400.
/metrics renders prometheus_client's families with ``fastexpo`` (same bytes, faster), with
its content negotiation (OpenMetrics when the scraper asks, which carries exemplars), gzip
and ``name[]`` filtering.
"""

from __future__ import annotations

import html
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import IO, Any, cast
from urllib.parse import parse_qsl
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer, make_server

from ._version import __version__
from .app import Exporter
from .fastexpo import make_metrics_app

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

MAX_QUERY_LENGTH = 4096
KEEP_ALIVE_IDLE_SECONDS = 60.0
SECURITY_HEADERS = [("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store")]


def _respond(
    start_response: StartResponse,
    status: str,
    body: bytes,
    content_type: str,
    extra: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    headers += SECURITY_HEADERS + (extra or [])
    start_response(status, headers)
    return [body]


def _json(start_response: StartResponse, code: int, payload: Any) -> list[bytes]:
    body = (json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n").encode()
    status = {200: "200 OK", 503: "503 Service Unavailable", 400: "400 Bad Request"}.get(
        code, f"{code} Status"
    )
    return _respond(start_response, status, body, "application/json")


def _landing(exporter: Exporter) -> bytes:
    links = [("/metrics", "Prometheus metrics (OpenMetrics when asked for)")]
    links += [(route.path, route.description) for route in exporter.routes.values()]
    items = "\n".join(
        f'<li><a href="{html.escape(path)}">{html.escape(path)}</a> — {html.escape(text)}</li>'
        for path, text in links
    )
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>cachewatch</title></head>'
        f"<body><h1>cachewatch {html.escape(__version__)}</h1><ul>{items}</ul></body></html>\n"
    ).encode()


def make_wsgi_app(exporter: Exporter) -> WSGIApp:
    """The exporter's endpoints as a WSGI app, to serve alone or mount in an application."""
    metrics_app = make_metrics_app(exporter.registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/") or "/"
        query_string = environ.get("QUERY_STRING", "")
        known = path in ("/", "/metrics") or path in exporter.routes
        if not known:
            return _respond(start_response, "404 Not Found", b"not found\n", "text/plain")
        if method not in ("GET", "HEAD"):
            return _respond(
                start_response,
                "405 Method Not Allowed",
                b"method not allowed\n",
                "text/plain",
                [("Allow", "GET, HEAD")],
            )
        if len(query_string) > MAX_QUERY_LENGTH:
            return _respond(start_response, "414 URI Too Long", b"query too long\n", "text/plain")
        try:
            query = dict(parse_qsl(query_string, keep_blank_values=True, strict_parsing=False))
        except ValueError:
            return _respond(start_response, "400 Bad Request", b"bad query\n", "text/plain")
        if path == "/":
            body = [_landing(exporter)]
            body = _respond(start_response, "200 OK", body[0], "text/html; charset=utf-8")
        elif path == "/metrics":
            # prometheus_client answers only GET: ask it for GET and drop the body for HEAD.
            body = list(metrics_app({**environ, "REQUEST_METHOD": "GET"}, start_response))
        else:
            code, payload = exporter.routes[path].handler(query)
            body = _json(start_response, code, payload)
        return [] if method == "HEAD" else body

    return app


class _ServerHandler(ServerHandler):
    http_version = "1.1"

    def cleanup_headers(self) -> None:
        super().cleanup_headers()
        request = getattr(self, "request_handler", None)
        if request is not None and request.close_connection:
            self.headers["Connection"] = "close"  # type: ignore[attr-defined]


class _QuietHandler(WSGIRequestHandler):
    """Access logs at debug level, not on stderr for every scrape; HTTP/1.1 keep-alive.

    Prometheus keeps its scrape connections open; serving several requests per connection
    spares a TCP handshake and a thread per scrape. Every response carries Content-Length.
    """

    protocol_version = "HTTP/1.1"
    timeout = KEEP_ALIVE_IDLE_SECONDS
    disable_nagle_algorithm = True  # a response must not wait for the previous one's ACK
    wbufsize = 64 * 1024  # status line, headers and body in one send, flushed per response

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s %s", self.address_string(), format % args)

    def handle(self) -> None:
        self.close_connection = True
        self._handle_one()
        self.wfile.flush()
        while not self.close_connection:
            self._handle_one()
            self.wfile.flush()

    def _handle_one(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except OSError:  # idle timeout or reset: end of this connection
            self.close_connection = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():  # an error was sent
            return
        if self.command not in ("GET", "HEAD") or self.headers.get("Content-Length"):
            self.close_connection = True  # a body we will not read: do not reuse the stream
        wfile = cast(IO[bytes], self.wfile)
        handler = _ServerHandler(
            self.rfile, wfile, self.get_stderr(), self.get_environ(), multithread=False
        )
        handler.request_handler = self  # type: ignore[attr-defined]  # wsgiref logs through it
        server = cast(WSGIServer, self.server)
        handler.run(server.get_app())  # type: ignore[arg-type]


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _ThreadingWSGIServer6(_ThreadingWSGIServer):
    address_family = socket.AF_INET6


class HttpServer:
    """A running HTTP server in a background thread."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    def shutdown(self, timeout: float = 2.0) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout)


def serve(app: WSGIApp, host: str, port: int) -> HttpServer:
    """Serve ``app`` on ``host:port`` from a daemon thread; port 0 picks a free port."""
    server_class: type[WSGIServer] = _ThreadingWSGIServer
    if ":" in host:
        server_class = _ThreadingWSGIServer6
    server = make_server(host, port, app, server_class=server_class, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="cachewatch-http", daemon=True)
    thread.start()
    return HttpServer(server, thread)
