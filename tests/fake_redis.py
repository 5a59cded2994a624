"""A small Redis-protocol (RESP2) peer on loopback that answers INFO with whatever a test
wants — malformed, huge or unexpected — to check that the exporter survives what a broken,
hostile or unusual server sends. Everything else gets a plausible minimal answer."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .servers import LOOPBACK

Reply = bytes
"""Raw RESP bytes to send back (the test decides whether they are well formed)."""


def bulk(payload: bytes) -> Reply:
    return b"$%d\r\n%s\r\n" % (len(payload), payload)


def array(*items: bytes) -> Reply:
    return b"*%d\r\n" % len(items) + b"".join(bulk(item) for item in items)


class FakeRedis:
    """Serves RESP on a free loopback port; ``info`` is called for each INFO command."""

    def __init__(self, info: Callable[[], Reply]) -> None:
        self.info = info
        self.commands: list[list[bytes]] = []
        self.connections = 0
        self._lock = threading.Lock()
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 10

            def handle(self) -> None:
                with fake._lock:
                    fake.connections += 1
                while True:
                    command = fake._read(self.rfile)
                    if command is None:
                        return
                    with fake._lock:
                        fake.commands.append(command)
                    reply = fake.answer(command)
                    if reply is None:  # close without answering
                        return
                    try:
                        self.wfile.write(reply)
                        self.wfile.flush()
                    except OSError:
                        return

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server((LOOPBACK, 0), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,))
        self._thread.daemon = True

    @staticmethod
    def _read(rfile: object) -> list[bytes] | None:
        """One RESP array of bulk strings (what clients send), or None at EOF."""
        readline = rfile.readline  # type: ignore[attr-defined]
        read = rfile.read  # type: ignore[attr-defined]
        try:
            header = readline(1024)
            if not header.startswith(b"*"):
                return None
            parts = []
            for _ in range(int(header[1:])):
                size = int(readline(1024)[1:])
                parts.append(read(size + 2)[:-2])
            return parts
        except (OSError, ValueError):
            return None

    def answer(self, command: list[bytes]) -> Reply | None:
        name = command[0].upper() if command else b""
        if name == b"INFO":
            return self.info()
        if name == b"PING":
            return b"+PONG\r\n"
        if name == b"CONFIG":
            key = command[2] if len(command) > 2 else b""
            value = b"16" if key == b"databases" else b"0"
            return array(key, value)
        if name == b"SCAN":
            return b"*2\r\n" + bulk(b"0") + b"*0\r\n"
        if name in (b"CLIENT", b"SELECT", b"AUTH", b"READONLY"):
            return b"+OK\r\n"
        if name == b"HELLO":  # as Redis 5 and some Redis-compatible servers answer
            return b"-ERR unknown command 'HELLO'\r\n"
        return b"-ERR unknown command\r\n"

    def start(self) -> FakeRedis:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"


@contextmanager
def fake_redis(info: Callable[[], Reply]) -> Iterator[FakeRedis]:
    server = FakeRedis(info).start()
    try:
        yield server
    finally:
        server.stop()
