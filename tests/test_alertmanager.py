"""``cachewatch alerts`` against an Alertmanager that is stalled, broken or not Alertmanager at
all: one clear line, a non-zero exit, bounded time, never a traceback, never the password of
the URL. (Connection refused is covered with the bundle's tests.)"""

from __future__ import annotations

import contextlib
import http.server
import io
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from cachewatch.cli import main
from cachewatch.cli.alertmanager import AlertmanagerClient
from cachewatch.cli.errors import UserFacingError

PASSWORD = "am-Pa55-4d1e"


@contextlib.contextmanager
def fake_alertmanager(status: int, body: bytes) -> Iterator[str]:
    """An HTTP server answering every request with ``status`` and ``body``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = answer

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://admin:{PASSWORD}@127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["alerts", *args])
    return code, out.getvalue(), err.getvalue()


ACTIONS = (["list"], ["silences"], ["ack", "CacheHitRatioLow", "--comment", "looking"])


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, b'{"unexpected": true}', "is it Alertmanager?"),
        (200, b"<html>a login page</html>", "did not answer JSON"),
        (200, b"", "did not answer JSON"),
        (200, b"null", "is it Alertmanager?"),
        (500, b"internal error\nwith a second line", "answered 500"),
        (503, b"", "answered 503"),
        (404, b"404 page not found", "answered 404"),
    ],
)
def test_a_broken_alertmanager_is_one_line_and_exit_1(
    status: int, body: bytes, expected: str
) -> None:
    with fake_alertmanager(status, body) as url:
        for action in ACTIONS:
            code, _, err = run(*action, "--alertmanager.url", url)
            assert code == 1, (action, err)
            assert err.count("\n") == 1 and err.startswith("cachewatch: error:"), err
            assert expected in err, err
            assert "Traceback" not in err
            assert PASSWORD not in err and "admin:***@" in err


def test_odd_entries_in_a_list_are_skipped_not_a_traceback() -> None:
    body = b'[1, "x", null, {"id": "s1", "matchers": [7, {"name": "alertname"}], "status": 3}]'
    with fake_alertmanager(200, body) as url:
        code, out, err = run("silences", "--alertmanager.url", url)
        assert code == 0, err
        assert out.startswith("s1 ? {alertname=?}")
        assert "1 silence(s)" in err and PASSWORD not in err
        code, out, err = run("list", "--alertmanager.url", url)
        assert code == 0, err
        assert out.startswith("? severity=?")


def test_a_stalled_alertmanager_costs_one_timeout() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # accepts connections (the kernel does), never answers
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        client = AlertmanagerClient(url, timeout=0.5)
        for call in (client.alerts, client.silences):
            start = time.monotonic()
            with pytest.raises(UserFacingError, match=r"unreachable \(no answer within 0.5s\)"):
                call()
            assert time.monotonic() - start < 2


def test_a_url_with_a_password_is_never_shown(capsys: pytest.CaptureFixture[str]) -> None:
    for url in (f"http://admin:{PASSWORD}@127.0.0.1:1", f"http://admin:{PASSWORD}@bad host"):
        code = main(["alerts", "list", "--alertmanager.url", url])
        err = capsys.readouterr().err
        assert code in (1, 2) and err.count("\n") == 1
        assert PASSWORD not in err and "***" in err
