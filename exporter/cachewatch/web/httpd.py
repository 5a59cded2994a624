"""The HTTP server under the WSGI app: strict about requests, bounded in what it holds.

Limits: request line (URL) and header block sizes, number of headers, no request bodies,
GET and HEAD (and POST without a body, which the routes allow for actions such as
``/-/reload`` only), a deadline for each request head (slow clients cannot hold a thread), and
a cap on concurrent connections. Every bad request gets a 4xx and the connection is closed.
TLS handshakes happen in the connection's own thread, so a client that never finishes one
blocks nobody. HTTP/1.1 keep-alive, as Prometheus scrapes: several requests per connection
spare a TCP (and TLS) handshake and a thread per scrape; an idle connection is closed after
KEEP_ALIVE_IDLE seconds, and none is kept alive while the server is busy or stopping.
Shutdown lets in-flight requests finish for a bounded time and closes idle connections.
"""

from __future__ import annotations

import contextlib
import email.message
import http.client
import logging
import socket
import ssl
import threading
import time
from http import HTTPStatus
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import unquote
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from .head import Head, parse_head

log = logging.getLogger(__name__)

MAX_REQUEST_LINE = 8192
MAX_HEADER_BYTES = 16384
MAX_HEADERS = 64
REQUEST_TIMEOUT = 10.0
KEEP_ALIVE_IDLE = 60.0
MAX_CONNECTIONS = 128
ALLOWED_METHODS = ("GET", "HEAD", "POST")


class _HeadTooLarge(Exception):
    pass


class _ServerHandler(ServerHandler):
    """wsgiref's handler, with the status line, headers and body in one send.

    wsgiref writes the head and the body separately: with TCP_NODELAY that is two segments
    (and two wake-ups of the client) for every response."""

    server_software = "cachewatch"
    http_version = "1.1"
    request_handler: RequestHandler | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: list[bytes] = []

    def _write(self, data: bytes) -> None:
        self._pending.append(data)

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self.stdout.write(data)
        self.stdout.flush()

    def run(self, application: Any) -> None:
        try:
            super().run(application)
        finally:
            self._flush()  # a response without a body (HEAD) has written no data

    def cleanup_headers(self) -> None:
        super().cleanup_headers()
        request = self.request_handler
        if request is not None and request.close_connection:
            self.headers["Connection"] = "close"  # type: ignore[attr-defined]

    def log_exception(self, exc_info: Any) -> None:
        # Never reached through make_wsgi_app (which cannot raise); keep tracebacks in the log.
        log.error("unhandled error in the WSGI app", exc_info=exc_info)


class RequestHandler(WSGIRequestHandler):
    """One connection: requests one after the other while the client keeps it alive."""

    server_version = "cachewatch"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT
    disable_nagle_algorithm = True  # a response must not wait for the previous one's ACK
    wbufsize = 8 * 1024  # headers in one send; a body larger than this goes straight out
    server: HardenedWSGIServer
    headers: Head | email.message.Message  # type: ignore[assignment]
    _head = b""

    def setup(self) -> None:
        self.timeout = self.server.request_timeout  # type: ignore[misc]
        self.server.reading(self.request)
        super().setup()
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        if log.isEnabledFor(logging.DEBUG):  # every request is logged: format it only if shown
            log.debug("http %s %s", self.address_string(), format % args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        if code >= 500:  # e.g. 505 for "HTTP/2.0" in a request line: the client's mistake
            code, message = HTTPStatus.BAD_REQUEST, message or "bad request"
        self.close_connection = True
        self._reject(code, message or HTTPStatus(code).phrase)

    def _reject(self, code: int, text: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        """A short plain-text 4xx, then close; never fails the thread if the client is gone."""
        self._answered = True
        self.close_connection = True
        if self.request_version in ("HTTP/0.9", ""):
            self.request_version = "HTTP/1.0"
        flat = text.replace("\r", " ").replace("\n", " ")[:200]
        body = (flat + "\n").encode("latin-1", "replace")
        try:
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.send_header("X-Content-Type-Options", "nosniff")
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:
            log.debug("client went away before a %s response", code)

    def _read_head(self) -> bytes:
        """The header block up to the blank line, within MAX_HEADER_BYTES and MAX_HEADERS."""
        head = bytearray()
        for _ in range(MAX_HEADERS + 1):
            line = self.rfile.readline(MAX_HEADER_BYTES + 1 - len(head))
            head += line
            if line in (b"\r\n", b"\n", b""):
                return bytes(head)
            if len(head) > MAX_HEADER_BYTES or not line.endswith(b"\n"):
                raise _HeadTooLarge
        raise _HeadTooLarge

    def handle(self) -> None:
        self.close_connection = True
        try:
            self._handle_one()
            self.wfile.flush()
            while not self.close_connection and self._await_next_request():
                self._handle_one()
                self.wfile.flush()
        except (OSError, ssl.SSLError) as exc:  # timeouts, resets, TLS failures mid-request
            log.debug("connection from %s dropped: %s", self.address_string(), type(exc).__name__)
        finally:
            self.server.read(self.request)
        self.close_connection = True

    def _await_next_request(self) -> bool:
        """Keep-alive: wait up to KEEP_ALIVE_IDLE for the next request's first byte; from
        then on its head has REQUEST_TIMEOUT, as the first request's had."""
        idle = self.server.keep_alive_idle
        if not self.server.reading(self.request, idle):
            return False  # the server is stopping
        self.connection.settimeout(idle)
        try:
            if not self.rfile.peek(1):  # type: ignore[attr-defined]
                return False
        except (OSError, ValueError):
            return False
        self.connection.settimeout(self.server.request_timeout)
        return self.server.reading(self.request)

    def _handle_one(self) -> None:
        self.command, self.request_version, self.requestline = "", "", ""
        self._answered = False
        line = self.rfile.readline(MAX_REQUEST_LINE + 1)
        if not line:
            return
        if len(line) > MAX_REQUEST_LINE:
            self._reject(HTTPStatus.REQUEST_URI_TOO_LONG, "request line too long")
            return
        self.raw_requestline = line
        try:
            head = self._read_head()
        except _HeadTooLarge:
            self._reject(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request headers too large")
            return
        self.server.read(self.request)
        self._head = head
        if not self.parse_request():
            if not self._answered:  # a blank request line: parse_request says nothing
                self._reject(HTTPStatus.BAD_REQUEST, "empty request line")
            return
        if self.headers.defects:
            self._reject(HTTPStatus.BAD_REQUEST, "malformed request headers")
            return
        if self.request_version == "HTTP/0.9":
            self._reject(HTTPStatus.BAD_REQUEST, "HTTP/0.9 is not supported")
            return
        if self.server.closing or self.server.busy:
            self.close_connection = True  # answered with "Connection: close"
        if self.command not in ALLOWED_METHODS:
            self._reject(
                HTTPStatus.METHOD_NOT_ALLOWED, "method not allowed", (("Allow", "GET, HEAD"),)
            )  # POST is for the actions only: the routes name them
            return
        length = (self.headers.get("Content-Length") or "0").strip()
        if self.headers.get("Transfer-Encoding") is not None or length != "0":
            self._reject(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request bodies are not accepted")
            return
        handler = _ServerHandler(
            self.rfile,
            self.wfile,
            self.get_stderr(),
            self.get_environ(),
            multithread=True,
        )
        handler.request_handler = self
        handler.run(self.server.get_app())

    def parse_request(self) -> bool:
        """http.server's ``parse_request`` (the same answers to a bad request line), with the
        header block of ``_read_head`` parsed by ``head.parse_head``."""
        self.command = None  # type: ignore[assignment]
        self.request_version = version = self.default_request_version
        self.close_connection = True
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        self.requestline = requestline
        words = requestline.split()
        if not words:
            return False
        if len(words) >= 3:
            version = words[-1]
            try:
                if not version.startswith("HTTP/"):
                    raise ValueError
                base_version_number = version.split("/", 1)[1]
                numbers = base_version_number.split(".")
                if len(numbers) != 2:
                    raise ValueError
                if any(not part.isdigit() or len(part) > 10 for part in numbers):
                    raise ValueError
                version_number = int(numbers[0]), int(numbers[1])
            except (ValueError, IndexError):
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request version ({version!r})")
                return False
            if version_number >= (1, 1):
                self.close_connection = False
            if version_number >= (2, 0):
                self.send_error(
                    HTTPStatus.HTTP_VERSION_NOT_SUPPORTED,
                    f"Invalid HTTP version ({base_version_number})",
                )
                return False
            self.request_version = version
        if not 2 <= len(words) <= 3:
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request syntax ({requestline!r})")
            return False
        command, path = words[:2]
        if len(words) == 2:
            self.close_connection = True
            if command != "GET":
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad HTTP/0.9 request type ({command!r})")
                return False
        self.command, self.path = command, path
        if self.path.startswith("//"):
            self.path = "/" + self.path.lstrip("/")  # no open redirect through //host/path
        try:
            self.headers = parse_head(self._head)
        except http.client.LineTooLong as err:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long", str(err))
            return False
        except http.client.HTTPException as err:
            self.send_error(
                HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers", str(err)
            )
            return False
        conntype = (self.headers.get("Connection") or "").lower()
        if conntype == "close":
            self.close_connection = True
        elif conntype == "keep-alive":
            self.close_connection = False
        expect = (self.headers.get("Expect") or "").lower()
        if expect == "100-continue" and self.request_version >= "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def get_environ(self) -> dict[str, str]:
        """wsgiref's environ of the request, from either kind of parsed headers."""
        env: dict[str, str] = self.server.base_environ.copy()
        env["SERVER_PROTOCOL"] = self.request_version
        env["SERVER_SOFTWARE"] = self.server_version
        env["REQUEST_METHOD"] = self.command
        path, _, query = self.path.partition("?")
        env["PATH_INFO"] = unquote(path, "iso-8859-1")
        env["QUERY_STRING"] = query
        env["REMOTE_ADDR"] = self.client_address[0]
        content_type = self.headers.get("content-type")
        env["CONTENT_TYPE"] = "text/plain" if content_type is None else content_type
        length = self.headers.get("content-length")
        if length:
            env["CONTENT_LENGTH"] = length
        for name, value in self.headers.items():
            key, value = name.replace("-", "_").upper(), value.strip()
            if key in env:
                continue  # CONTENT_LENGTH, CONTENT_TYPE and the like
            key = "HTTP_" + key
            if key in env:
                env[key] += "," + value  # repeated headers, comma-separated
            else:
                env[key] = value
        if isinstance(self.request, ssl.SSLSocket):
            env["HTTPS"] = "on"
        return env


class HardenedWSGIServer(ThreadingMixIn, WSGIServer):
    """Threaded WSGI server with TLS in the connection thread and a cap on connections."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.ssl_context: ssl.SSLContext | None = None
        self.request_timeout = REQUEST_TIMEOUT
        self.keep_alive_idle = KEEP_ALIVE_IDLE
        self.closing = False
        self._reading: dict[Any, float] = {}
        self._reading_lock = threading.Lock()
        self._closed = threading.Event()
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._active = 0
        self._idle = threading.Condition()
        super().__init__(*args, **kwargs)

    def server_bind(self) -> None:
        # socketserver's bind without wsgiref's socket.getfqdn(), which can stall on DNS.
        if self.allow_reuse_address and hasattr(socket, "SO_REUSEADDR"):
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.allow_reuse_port and hasattr(socket, "SO_REUSEPORT"):
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)
        self.setup_environ()

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        return sock, address

    def reading(self, connection: Any, seconds: float | None = None) -> bool:
        """``connection`` is in its handshake or request head (it has REQUEST_TIMEOUT in all),
        or idle between requests (``seconds``). False when the server is stopping."""
        with self._reading_lock:
            if self.closing:
                return False
            self._reading[connection] = time.monotonic() + (seconds or self.request_timeout)
            return True

    def begin_close(self) -> None:
        """No new requests on kept-alive connections from now on."""
        with self._reading_lock:
            self.closing = True

    @property
    def busy(self) -> bool:
        """Over half the connection slots taken: keep no connection alive for now."""
        return self._active > MAX_CONNECTIONS // 2

    def read(self, connection: Any) -> None:
        with self._reading_lock:
            self._reading.pop(connection, None)

    def start_reaper(self) -> None:
        """Close connections that dribble their head (slowloris): one thread for all of them."""
        threading.Thread(target=self._reap, name="cachewatch-http-reaper", daemon=True).start()

    def _reap(self) -> None:
        while not self._closed.wait(min(0.5, self.request_timeout / 2)):
            self.close_reading(time.monotonic())

    def close_reading(self, before: float | None = None) -> int:
        """Close connections still in their handshake or request head (all of them, or those
        whose deadline is before ``before``): at shutdown they are not requests in flight."""
        with self._reading_lock:
            late = [
                c for c, deadline in self._reading.items() if before is None or deadline < before
            ]
            for conn in late:
                del self._reading[conn]
        for conn in late:
            log.debug("closing a connection that has not sent its request")
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        return len(late)

    def server_close(self) -> None:
        self._closed.set()
        super().server_close()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            log.warning("too many connections (%d): refusing one", MAX_CONNECTIONS)
            self.shutdown_request(request)
            return
        with self._idle:
            self._active += 1
        try:
            super().process_request(request, client_address)
        except Exception:
            self._done()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._done()

    def _done(self) -> None:
        self._slots.release()
        with self._idle:
            self._active -= 1
            self._idle.notify_all()

    @property
    def active_connections(self) -> int:
        return self._active

    def wait_idle(self, timeout: float) -> bool:
        """Wait for in-flight requests to finish; False if some are still running."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._active > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Failed TLS handshakes and clients that vanish are routine, not tracebacks on stderr.
        log.debug("connection from %s failed", client_address, exc_info=True)


class HardenedWSGIServer6(HardenedWSGIServer):
    address_family = socket.AF_INET6
