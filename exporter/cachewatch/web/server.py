"""Serving a WSGI app: the hardened HTTP server (``httpd``) in a background thread, with
TLS and basic auth when a web configuration says so, and a bounded shutdown."""

from __future__ import annotations

import logging
import threading
import time
from wsgiref.simple_server import make_server

from ..config.webconfig import WebConfig
from . import probes
from .httpd import HardenedWSGIServer, HardenedWSGIServer6, RequestHandler
from .routes import WSGIApp

log = logging.getLogger(__name__)


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


def serve(
    app: WSGIApp,
    host: str,
    port: int,
    web_config: WebConfig | None = None,
    *,
    shared_port: bool = False,
) -> HttpServer:
    """Serve ``app`` on ``host:port`` from a daemon thread; port 0 picks a free port.

    ``shared_port``: bind with ``SO_REUSEPORT``, so that every worker of a multi-process
    application can serve the same port (each answers with the same aggregate, and the
    kernel spreads the scrapes); Linux allows it to processes of the same user only.

    With a web configuration: TLS on the socket and basic auth in front of ``app`` (but for
    the probes, ``probes.PATHS``).
    Raises WebConfigError when its certificates cannot be loaded, OSError when the address
    cannot be bound.
    """
    server_class: type[HardenedWSGIServer] = HardenedWSGIServer
    if ":" in host:
        server_class = HardenedWSGIServer6
    context = None
    if web_config is not None:
        from .auth import protect  # bcrypt's module loads only with a web configuration

        context = web_config.tls.context() if web_config.tls is not None else None
        app = protect(app, web_config, open_paths=probes.PATHS)
    if shared_port:
        server_class = type(server_class.__name__, (server_class,), {"allow_reuse_port": True})
    server = make_server(host, port, app, server_class=server_class, handler_class=RequestHandler)
    assert isinstance(server, HardenedWSGIServer)
    server.ssl_context = context
    server.start_reaper()
    thread = threading.Thread(
        target=server.serve_forever, args=(0.1,), name="cachewatch-http", daemon=True
    )
    thread.start()
    return HttpServer(server, thread, "https" if context is not None else "http")
