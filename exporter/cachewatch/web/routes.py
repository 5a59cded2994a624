"""The routing of the exporter's HTTP endpoints: the status page at /, /metrics, the JSON
and WSGI routes a site adds (/health, /report, /alerts, /probe, the probes), and its
actions (/-/reload).

GET and HEAD everywhere but at the actions, which take POST only (as Prometheus's
/-/reload does); unknown paths are 404, other methods 405, malformed requests 400 (the
limits on request size live in ``httpd``; TLS and basic auth in ``server`` and ``auth``).
/metrics is ``metrics``'s app: content negotiation, gzip, single flight. A JSON route with
a page answers HTML to a browser (``Accept: text/html`` first) and JSON to everyone else.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import parse_qsl

from prometheus_client.registry import Collector

from . import status_page
from .html import PageRenderer, layout, page_headers, wants_html
from .metrics import make_metrics_app

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
JsonHandler = Callable[[Mapping[str, str]], tuple[int, Any]]
"""Takes the query parameters; returns (HTTP status, JSON-serialisable body)."""


ActionHandler = Callable[[], tuple[int, Any]]
"""Does something (reload the configuration); returns (HTTP status, JSON body)."""


@dataclass(frozen=True)
class Route:
    path: str
    description: str
    handler: JsonHandler
    page: PageRenderer | None = None
    """Renders the handler's JSON for a browser."""


@dataclass(frozen=True)
class Action:
    """A POST endpoint that changes the running process (``/-/reload``)."""

    path: str
    description: str
    handler: ActionHandler


class Site(Protocol):
    """What the routing serves: the registry behind /metrics, and the routes added to it."""

    @property
    def registry(self) -> Collector: ...

    @property
    def routes(self) -> Mapping[str, Route]: ...

    @property
    def wsgi_routes(self) -> Mapping[str, tuple[str, WSGIApp]]: ...

    @property
    def actions(self) -> Mapping[str, Action]: ...

    @property
    def links(self) -> Mapping[str, str | None]:
        """tool -> URL of the tools the pages link to (None: not configured)."""
        ...


MAX_QUERY_LENGTH = 4096
SECURITY_HEADERS = [("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store")]


def respond(
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


def _status(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Status"


VARY = [("Vary", "Accept")]


def _json(start_response: StartResponse, code: int, payload: Any, negotiated: bool) -> list[bytes]:
    body = (json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n").encode()
    extra = VARY if negotiated else []
    return respond(start_response, _status(code), body, "application/json", extra)


def _html(
    start_response: StartResponse,
    code: int,
    body: bytes,
    script: str | None = None,
    vary: bool = True,
) -> list[bytes]:
    extra = page_headers(script) + (VARY if vary else [])
    return respond(start_response, _status(code), body, "text/html; charset=utf-8", extra)


def _payload(site: Site, path: str) -> Any:
    """The JSON a route of the site gives, or None when the site has no such route."""
    route = site.routes.get(path)
    return None if route is None else route.handler({})[1]


def _status_page(
    site: Site, query: Mapping[str, str], start_response: StartResponse
) -> list[bytes]:
    """/: the live page, or with ``?part=live`` only the part that its script swaps in."""
    report, alerts = _payload(site, "/report"), _payload(site, "/alerts")
    health = _payload(site, "/health") or {}
    title, fragment = status_page.live(report, alerts, health, time.time())
    if query.get("part") == "live":
        return _html(start_response, 200, fragment.encode(), vary=False)
    endpoints = {"/metrics": "Prometheus metrics (OpenMetrics when asked for)"}
    endpoints |= {path: description for path, (description, _) in site.wsgi_routes.items()}
    body = status_page.page(title, fragment, site.links, endpoints)
    return _html(start_response, 200, body, status_page.SCRIPT, vary=False)


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
    return respond(
        start_response,
        "503 Service Unavailable",
        b"internal error, see the log\n",
        "text/plain",
        exc_info=sys.exc_info(),
    )


def make_wsgi_app(exporter: Site) -> WSGIApp:
    """The exporter's endpoints as a WSGI app, to serve alone or mount in an application.

    No request can make it raise: bad requests are 4xx, and a failure inside a handler or a
    collector is a 503 with a generic body (the detail goes to the log, never to the client).
    """
    metrics_app = make_metrics_app(exporter.registry, SECURITY_HEADERS)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/") or "/"
        query_string = environ.get("QUERY_STRING", "")
        known = path in ("/", "/metrics") or path in exporter.routes or path in exporter.wsgi_routes
        if path in exporter.actions:
            return _action(exporter.actions[path], method, start_response)
        if not known:
            return respond(start_response, "404 Not Found", b"not found\n", "text/plain")
        if method not in ("GET", "HEAD"):
            return respond(
                start_response,
                "405 Method Not Allowed",
                b"method not allowed\n",
                "text/plain",
                [("Allow", "GET, HEAD")],
            )
        if len(query_string) > MAX_QUERY_LENGTH:
            return respond(start_response, "414 URI Too Long", b"query too long\n", "text/plain")
        try:
            query = dict(parse_qsl(query_string, keep_blank_values=True, strict_parsing=False))
        except ValueError:
            return respond(start_response, "400 Bad Request", b"bad query\n", "text/plain")
        try:
            if path == "/":
                body = _status_page(exporter, query, start_response)
            elif path == "/metrics":
                body = metrics_app(environ, start_response)
            elif path in exporter.wsgi_routes:
                body = list(exporter.wsgi_routes[path][1](environ, _secured(start_response)))
            else:
                route = exporter.routes[path]
                code, payload = route.handler(query)
                if route.page is not None and wants_html(environ.get("HTTP_ACCEPT")):
                    title, html_body = route.page(payload)
                    links = status_page.tool_links(exporter.links)
                    body = _html(start_response, code, layout(title, html_body, links=links))
                else:
                    body = _json(start_response, code, payload, route.page is not None)
        except Exception:  # noqa: BLE001 - never a 500 or a traceback to the client
            return _internal_error(start_response, path)
        return [] if method == "HEAD" else body

    return app


def _action(action: Action, method: str, start_response: StartResponse) -> list[bytes]:
    """POST only; the handler's JSON, or a 503 with the detail in the log if it fails."""
    if method != "POST":
        return respond(
            start_response,
            "405 Method Not Allowed",
            b"only POST requests allowed\n",
            "text/plain",
            [("Allow", "POST")],
        )
    try:
        code, payload = action.handler()
        return _json(start_response, code, payload, False)
    except Exception:  # noqa: BLE001 - never a 500 or a traceback to the client
        return _internal_error(start_response, action.path)
