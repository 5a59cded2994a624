"""Notification receivers for the tests: a real SMTP server (aiosmtpd) and a webhook server."""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from aiosmtpd.controller import Controller

from .servers import LOOPBACK, free_port

T = TypeVar("T")


class Inbox:
    """Collects what a receiver got, thread-safely; ``wait_for`` polls with a deadline."""

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._lock = threading.Lock()

    def add(self, item: Any) -> None:
        with self._lock:
            self._items.append(item)

    def items(self) -> list[Any]:
        with self._lock:
            return list(self._items)

    def wait_for(self, match: Callable[[Any], bool], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for item in self.items():
                if match(item):
                    return item
            time.sleep(0.2)
        raise AssertionError(f"no {what} within {timeout}s; got {len(self.items())} other(s)")


class _MailHandler:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.inbox.add(message)
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[int, Inbox]]:
    """An aiosmtpd SMTP server on loopback; yields (port, inbox of EmailMessage)."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(_MailHandler(inbox), hostname=LOOPBACK, port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


def mail_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


@contextmanager
def webhook_server() -> Iterator[tuple[int, Inbox]]:
    """An HTTP server that records every JSON POST body; yields (port, inbox of dicts)."""
    inbox = Inbox()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            inbox.add(json.loads(self.rfile.read(length) or b"{}"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], inbox
    finally:
        server.shutdown()
        server.server_close()
