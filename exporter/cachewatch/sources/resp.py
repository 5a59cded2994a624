"""The exporter's own Redis client: RESP2 over one socket per request, for the few read
commands ``serve`` sends (INFO, CONFIG GET, CLUSTER INFO/NODES, SENTINEL ..., SCAN, MEMORY
USAGE), one at a time or pipelined.

Why not redis-py here, measured on Python 3.11 with redis-py 8.1 (``bench/scrape.py`` and
``python -c 'import redis'``): importing it adds 9.7 MiB to the RSS of a process that already
has prometheus_client (asyncio, its parsers, its observability layer), a quarter of what
``cachewatch serve`` holds; and its per-command layers took 14% of a scrape. The exporter
needs none of what makes redis-py large: no RESP3, pub/sub, retries, cluster routing or
response callbacks (cachewatch follows Sentinels and Cluster nodes itself). redis-py stays the
library for the applications cachewatch instruments (``instrument_redis``).

Hostile peers are bounded: bulk strings are read in chunks up to Redis's own 512 MiB limit,
arrays nest at most 8 deep, an unknown reply type or a RESP3 reply is a protocol error, and
a connection that timed out or broke mid-reply is closed, never reused. ``ssl`` is imported
only for a ``rediss://`` server: it alone is 6 MiB of RSS.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Sequence
from io import BufferedReader
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import ssl

MAX_BULK_BYTES = 512 * 1024 * 1024
"""Redis's proto-max-bulk-len default: no real reply is larger."""
MAX_ARRAY_ITEMS = 1 << 24
MAX_DEPTH = 8
READ_CHUNK = 1 << 20
"""Bulk strings are read at most this much at a time, so a lying length allocates nothing."""
READ_BUFFER = 64 * 1024

Reply = Any
"""bytes, int, None, a list of replies, or in place of a reply the error it was (a
ResponseError, or an AuthenticationError for NOAUTH): ``run`` returns errors, callers raise."""


def _resolvable(host: str) -> str | bytes:
    """An ASCII host as bytes: getaddrinfo encodes a str host with the IDNA codec, whose first
    use imports stringprep and unicodedata (~1.3 MiB of resident memory, for names that IDNA
    leaves as they are). Other hosts stay str, and IDNA encodes them as before."""
    return host.encode("ascii") if host.isascii() else host


class RedisError(Exception):
    """Talking to Redis failed."""


class ResponseError(RedisError):
    """An error reply: the server refused the command (the connection stays good)."""


class RedisConnectionError(RedisError, ConnectionError):
    """The connection failed or broke: it is closed and not reused."""


class RedisTimeoutError(RedisConnectionError, TimeoutError):
    """Connecting or reading took longer than its timeout."""


class AuthenticationError(RedisConnectionError):
    """The server refused the credentials, or wants some and none were given."""


class ProtocolError(RedisConnectionError):
    """The peer does not speak RESP2 (a broken or hostile server)."""


_CONNECTION_REPLIES = {
    b"NOAUTH": AuthenticationError,
    b"WRONGPASS": AuthenticationError,
    b"LOADING": RedisConnectionError,
}
"""Error replies that mean the connection cannot serve commands, as redis-py maps them."""


def _error(line: bytes) -> RedisError:
    code = line.split(b" ", 1)[0]
    text = line.decode("utf-8", errors="replace")
    if code in _CONNECTION_REPLIES:
        return _CONNECTION_REPLIES[code](text)
    if line.startswith(b"ERR max number of clients reached"):
        return RedisConnectionError(text)
    return ResponseError(text)


def _encode(part: object) -> bytes:
    if isinstance(part, bytes):
        return part
    if isinstance(part, str):
        return part.encode("utf-8")
    if isinstance(part, (int, float)) and not isinstance(part, bool):
        return repr(part).encode("ascii")
    raise TypeError(f"a Redis command argument must be bytes, str, int or float, not {part!r}")


def pack(commands: Sequence[Sequence[object]]) -> bytes:
    """Commands as RESP arrays of bulk strings, in one buffer for one send."""
    out = bytearray()
    for command in commands:
        out += b"*%d\r\n" % len(command)
        for part in command:
            data = _encode(part)
            out += b"$%d\r\n" % len(data)
            out += data
            out += b"\r\n"
    return bytes(out)


class TlsOptions:
    """What a ``rediss://`` connection verifies and presents."""

    __slots__ = ("ca_file", "cert_file", "key_file")

    def __init__(
        self, ca_file: str | None, cert_file: str | None = None, key_file: str | None = None
    ) -> None:
        self.ca_file = ca_file
        self.cert_file = cert_file
        self.key_file = key_file

    def context(self) -> ssl.SSLContext:
        """A client context that verifies the server's certificate and name."""
        import ssl

        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


class Connection:
    """One socket to one server, set up (TLS, AUTH, SELECT) when it opens."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._where = f"{client.host}:{client.port}"
        self._sock: socket.socket | None = None
        self._reader: BufferedReader | None = None

    def open(self) -> None:
        client = self._client
        try:
            sock = socket.create_connection(
                # create_connection hands the host to getaddrinfo as it is; typeshed types it
                # str only, but getaddrinfo takes bytes too (typed so there)
                (cast(str, _resolvable(client.host)), client.port),
                timeout=client.connect_timeout,
            )
        except TimeoutError as exc:
            raise RedisTimeoutError(f"Timeout connecting to {self._where}") from exc
        except OSError as exc:
            raise RedisConnectionError(self._os_error("connecting to", exc)) from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if client.tls is not None:
                sock = self._wrap(sock, client.tls)
            sock.settimeout(client.socket_timeout)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._reader = cast(BufferedReader, sock.makefile("rb", buffering=READ_BUFFER))
        setup: list[tuple[object, ...]] = []
        if client.password is not None:
            auth = ("AUTH", client.username) if client.username else ("AUTH",)
            setup.append((*auth, client.password))
        if client.db:
            setup.append(("SELECT", client.db))
        if setup:
            try:
                for command, reply in zip(setup, self.run(setup), strict=True):
                    if isinstance(reply, RedisError):
                        kind = AuthenticationError if command[0] == "AUTH" else RedisConnectionError
                        raise kind(str(reply))
            except BaseException:
                self.close()
                raise

    def _wrap(self, sock: socket.socket, tls: TlsOptions) -> socket.socket:
        import ssl

        try:
            context = tls.context()
            sock.settimeout(self._client.connect_timeout)
            return context.wrap_socket(sock, server_hostname=self._client.host)
        except TimeoutError as exc:
            raise RedisTimeoutError(f"Timeout in the TLS handshake with {self._where}") from exc
        except (ssl.SSLError, OSError) as exc:
            raise RedisConnectionError(f"TLS with {self._where} failed: {exc}") from exc

    def _os_error(self, doing: str, exc: OSError) -> str:
        if exc.errno is not None:
            return f"Error {exc.errno} {doing} {self._where}. {exc.strerror}."
        return f"Error {doing} {self._where}: {exc}"

    def run(self, commands: Sequence[Sequence[object]]) -> list[Reply]:
        """Send ``commands`` in one write and read one reply each; an error reply comes back
        as a ResponseError in its place. Any other failure closes the connection."""
        sock, reader = self._sock, self._reader
        if sock is None or reader is None:
            raise RedisConnectionError(f"the connection to {self._where} is closed")
        try:
            sock.sendall(pack(commands))
            return [self._read(reader, 0) for _ in commands]
        except RedisConnectionError:
            self.close()
            raise
        except TimeoutError as exc:
            self.close()
            raise RedisTimeoutError(f"Timeout reading from {self._where}") from exc
        except OSError as exc:
            self.close()
            raise RedisConnectionError(self._os_error("talking to", exc)) from exc
        except BaseException:
            self.close()
            raise

    def _read(self, reader: BufferedReader, depth: int) -> Reply:
        line = reader.readline(READ_BUFFER)
        if not line.endswith(b"\r\n"):
            if not line:
                raise RedisConnectionError(f"{self._where} closed the connection")
            raise ProtocolError(f"a reply line from {self._where} is cut or too long")
        kind, body = line[:1], line[1:-2]
        if kind == b"$":
            length = self._length(body, MAX_BULK_BYTES)
            return None if length < 0 else self._bulk(reader, length)
        if kind == b"+":
            return body
        if kind == b":":
            return self._length(body, None)
        if kind == b"-":
            return _error(body)
        if kind == b"*":
            count = self._length(body, MAX_ARRAY_ITEMS)
            if count < 0:
                return None
            if depth >= MAX_DEPTH:
                raise ProtocolError(f"replies from {self._where} nest too deep")
            return [self._read(reader, depth + 1) for _ in range(count)]
        raise ProtocolError(f"{self._where} sent a reply of unknown type {kind!r}")

    def _length(self, body: bytes, limit: int | None) -> int:
        try:
            value = int(body)
        except ValueError:
            raise ProtocolError(f"{self._where} sent a malformed number") from None
        if limit is not None and value > limit:
            raise ProtocolError(f"{self._where} announced a reply larger than Redis allows")
        return value

    def _bulk(self, reader: BufferedReader, length: int) -> bytes:
        wanted = length + 2
        if wanted <= READ_CHUNK:
            data = reader.read(wanted)
        else:
            parts = bytearray()
            while len(parts) < wanted:
                chunk = reader.read(min(READ_CHUNK, wanted - len(parts)))
                if not chunk:
                    break
                parts += chunk
            data = bytes(parts)
        if len(data) != wanted:
            raise RedisConnectionError(f"{self._where} closed the connection mid-reply")
        if not data.endswith(b"\r\n"):
            raise ProtocolError(f"a bulk reply from {self._where} does not end its line")
        return data[:-2]

    def close(self) -> None:
        sock, reader = self._sock, self._reader
        self._sock = self._reader = None
        for closable in (reader, sock):
            if closable is not None:
                with contextlib.suppress(OSError):
                    closable.close()

    @property
    def is_open(self) -> bool:
        return self._sock is not None


class Pipeline:
    """Commands queued to go in one round trip (never a MULTI transaction)."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._commands: list[tuple[object, ...]] = []

    def execute_command(self, *args: object) -> Pipeline:
        self._commands.append(args)
        return self

    def execute(self, raise_on_error: bool = True) -> list[Reply]:
        """One reply per command; an error reply is raised, or left in its place."""
        commands, self._commands = self._commands, []
        if not commands:
            return []
        replies = self._client.run(commands)
        if raise_on_error:
            for reply in replies:
                if isinstance(reply, RedisError):
                    raise reply
        return replies


class Client:
    """A small pool of connections to one server: the poll and the census each take one,
    at the same time. Connections that broke are dropped; at most ``max_connections`` idle
    ones are kept."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        connect_timeout: float | None = None,
        socket_timeout: float | None = None,
        tls: TlsOptions | None = None,
        max_connections: int = 4,
    ) -> None:
        self.host = host
        self.port = port
        self.db = db
        self.username = username
        self.password = password
        self.connect_timeout = connect_timeout
        self.socket_timeout = socket_timeout
        self.tls = tls
        self.max_connections = max_connections
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:  # never the password
        return f"<cachewatch Redis client {self.host}:{self.port} db={self.db}>"

    def run(self, commands: Sequence[Sequence[object]]) -> list[Reply]:
        """``commands`` in one round trip on a pooled connection: their replies, error
        replies in place."""
        with self._lock:
            connection = self._idle.pop() if self._idle else None
        if connection is None:
            connection = Connection(self)
            connection.open()
        try:
            return connection.run(commands)
        finally:
            if connection.is_open:
                with self._lock:
                    if not self._closed and len(self._idle) < self.max_connections:
                        self._idle.append(connection)
                        connection = None
                if connection is not None:
                    connection.close()

    def execute_command(self, *args: object) -> Reply:
        """One command; an error reply is raised as ResponseError."""
        (reply,) = self.run((args,))
        if isinstance(reply, RedisError):
            raise reply
        return reply

    def pipeline(self, transaction: bool = False) -> Pipeline:
        if transaction:
            raise ValueError("the exporter's client sends no transactions")
        return Pipeline(self)

    def close(self) -> None:
        """Close the idle connections; one in use now is closed when its command is done.
        A closed client still works, on a connection for each call."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
