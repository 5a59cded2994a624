"""HTTP endpoints: a landing page, /metrics, and the exporter's JSON routes.

Only GET and HEAD; unknown paths are 404, other methods 405, malformed requests 400 (the
limits on request size live in ``httpd``); with a web configuration, TLS and basic auth.
/metrics renders prometheus_client's families with ``fastexpo`` (same bytes, faster), with
its content negotiation (OpenMetrics when the scraper asks, which carries exemplars), gzip
and ``name[]`` filtering; identical concurrent scrapes share one rendering.
"""

from __future__ import annotations

import html
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl
from wsgiref.simple_server import make_server

from ._version import __version__
from .app import Exporter
from .auth import BasicAuth
from .fastexpo import make_metrics_app
from .httpd import HardenedWSGIServer, HardenedWSGIServer6, RequestHandler
from .singleflight import SingleFlight
from .webconfig import WebConfig

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

MAX_QUERY_LENGTH = 4096
SECURITY_HEADERS = [("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store")]


def _respond(
    start_response: StartResponse,
    status: str,
    body: bytes,
    content_type: str,
    extra: list[tuple[str, str]] | None = None,
    exc_info: Any = None,
) -> list[bytes]:
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    headers += SECURITY_HEADERS + (extra or [])
    if exc_info is not None:
        start_response(status, headers, exc_info)
    else:
        start_response(status, headers)
    return [body]


def _json(start_response: StartResponse, code: int, payload: Any) -> list[bytes]:
    body = (json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n").encode()
    try:
        status = f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        status = f"{code} Status"
    return _respond(start_response, status, body, "application/json")


def _landing(exporter: Exporter) -> bytes:
    links = [("/metrics", "Prometheus metrics (OpenMetrics when asked for)")]
    links += [(route.path, route.description) for route in exporter.routes.values()]
    links += [(path, description) for path, (description, _) in exporter.wsgi_routes.items()]
    items = "\n".join(
        f'<li><a href="{html.escape(path)}">{html.escape(path)}</a> — {html.escape(text)}</li>'
        for path, text in links
    )
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>cachewatch</title></head>'
        f"<body><h1>cachewatch {html.escape(__version__)}</h1><ul>{items}</ul></body></html>\n"
    ).encode()


def _secured(start_response: StartResponse) -> StartResponse:
    """``start_response`` that adds the security headers a route did not set itself."""

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        names = {name.lower() for name, _ in headers}
        extra = [(n, v) for n, v in SECURITY_HEADERS if n.lower() not in names]
        return start_response(status, headers + extra, exc_info)

    return start


def _internal_error(start_response: StartResponse, what: str) -> list[bytes]:
    """A failure of ours, not of the request: 503, a generic body, and the detail in the log."""
    log.error("internal error serving %s", what, exc_info=True)
    return _respond(
        start_response,
        "503 Service Unavailable",
        b"internal error, see the log\n",
        "text/plain",
        exc_info=sys.exc_info(),
    )


def make_wsgi_app(exporter: Exporter) -> WSGIApp:
    """The exporter's endpoints as a WSGI app, to serve alone or mount in an application.

    No request can make it raise: bad requests are 4xx, and a failure inside a handler or a
    collector is a 503 with a generic body (the detail goes to the log, never to the client).
    """
    metrics_app = make_metrics_app(exporter.registry)
    flight: SingleFlight[tuple[str, list[tuple[str, str]], bytes]] = SingleFlight()

    def render_metrics(environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        captured: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            captured[:] = [status, list(headers)]

        # Rendered as for GET; the body is dropped below for HEAD.
        body = b"".join(metrics_app({**environ, "REQUEST_METHOD": "GET"}, capture))
        return captured[0], captured[1], body

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/") or "/"
        query_string = environ.get("QUERY_STRING", "")
        known = path in ("/", "/metrics") or path in exporter.routes or path in exporter.wsgi_routes
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
        try:
            if path == "/":
                page = _landing(exporter)
                body = _respond(start_response, "200 OK", page, "text/html; charset=utf-8")
            elif path == "/metrics":
                # What prometheus_client's app reads: identical scrapes share one rendering.
                key = (
                    environ.get("HTTP_ACCEPT"),
                    environ.get("HTTP_ACCEPT_ENCODING"),
                    query_string,
                )
                status, headers, payload = flight.do(key, lambda: render_metrics(environ))
                start_response(status, headers + SECURITY_HEADERS)
                body = [payload]
            elif path in exporter.wsgi_routes:
                body = list(exporter.wsgi_routes[path][1](environ, _secured(start_response)))
            else:
                code, payload = exporter.routes[path].handler(query)
                body = _json(start_response, code, payload)
        except Exception:  # noqa: BLE001 - never a 500 or a traceback to the client
            return _internal_error(start_response, path)
        return [] if method == "HEAD" else body

    return app


def protect(app: WSGIApp, web_config: WebConfig) -> WSGIApp:
    """``app`` behind the web configuration's basic auth, with its extra response headers."""
    auth = BasicAuth(web_config.users) if web_config.users else None
    extra = list(web_config.headers)

    def protected(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, headers + extra, exc_info)

        if auth is not None and auth.check(environ.get("HTTP_AUTHORIZATION")) is None:
            log.debug("basic auth failed from %s", environ.get("REMOTE_ADDR", "?"))
            return _respond(
                start,
                "401 Unauthorized",
                b"unauthorized\n",
                "text/plain",
                [("WWW-Authenticate", 'Basic realm="cachewatch", charset="UTF-8"')],
            )
        return app(environ, start)

    return protected


class HttpServer:
    """A running HTTP server in a background thread."""

    def __init__(self, server: HardenedWSGIServer, thread: threading.Thread, scheme: str) -> None:
        self._server = server
        self._thread = thread
        self.scheme = scheme

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def active_connections(self) -> int:
        return self._server.active_connections

    def shutdown(self, timeout: float = 2.0) -> None:
        """Stop accepting, let in-flight requests finish within ``timeout``, close."""
        deadline = time.monotonic() + timeout
        self._server.begin_close()
        self._server.shutdown()
        self._server.server_close()
        self._server.close_reading()
        if not self._server.wait_idle(max(0.0, deadline - time.monotonic())):
            log.warning("%d requests still running at shutdown", self._server.active_connections)
        self._thread.join(max(0.0, deadline - time.monotonic()))


def serve(app: WSGIApp, host: str, port: int, web_config: WebConfig | None = None) -> HttpServer:
    """Serve ``app`` on ``host:port`` from a daemon thread; port 0 picks a free port.

    With a web configuration: TLS on the socket and basic auth in front of ``app``.
    Raises WebConfigError when its certificates cannot be loaded, OSError when the address
    cannot be bound.
    """
    server_class: type[HardenedWSGIServer] = HardenedWSGIServer
    if ":" in host:
        server_class = HardenedWSGIServer6
    context = None
    if web_config is not None:
        context = web_config.tls.context() if web_config.tls is not None else None
        app = protect(app, web_config)
    server = make_server(host, port, app, server_class=server_class, handler_class=RequestHandler)
    assert isinstance(server, HardenedWSGIServer)
    server.ssl_context = context
    server.start_reaper()
    thread = threading.Thread(
        target=server.serve_forever, args=(0.1,), name="cachewatch-http", daemon=True
    )
    thread.start()
    return HttpServer(server, thread, "https" if context is not None else "http")
