"""SIGTERM while Prometheus is scraping: in-flight scrapes complete, the process exits
within 2 s even with a stuck client, and every connection ends up closed."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from .otlp_receiver import otlp_receiver
from .servers import free_port, wait_for_port


def _scrape_forever(port: int, stop: threading.Event, outcomes: list[str]) -> None:
    """Scrape until told to stop; record 'ok', 'refused' or 'truncated' per attempt."""
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                conn.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
        except OSError:
            outcomes.append("refused")
            time.sleep(0.01)
            continue
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n")
             if line.lower().startswith(b"content-length:")),
            -1,
        )  # fmt: skip
        if not data:
            outcomes.append("refused")  # accepted by the kernel, closed before being served
        elif head.startswith(b"HTTP/1.1 200") and len(body) == length:
            outcomes.append("ok")
        else:
            outcomes.append("truncated")


def _scrape_kept_alive(port: int, stop: threading.Event, outcomes: list[str]) -> None:
    """Scrape over one kept-alive connection, as Prometheus does, reconnecting when closed."""
    conn: http.client.HTTPConnection | None = None
    while not stop.is_set():
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/metrics")
            response = conn.getresponse()
            body = response.read()
            ok = response.status == 200 and len(body) == int(response.headers["Content-Length"])
            outcomes.append("ok" if ok else "truncated")
            if response.will_close:
                conn.close()
                conn = None
        except http.client.IncompleteRead:
            outcomes.append("truncated")
            conn = None
        except (OSError, http.client.HTTPException):
            outcomes.append("refused")  # closed between two requests, or nothing listens
            conn = None
            time.sleep(0.01)
    if conn is not None:
        conn.close()


def test_sigterm_during_scrapes_is_graceful_and_bounded() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cachewatch.cli", "demo", "--web.listen-address",
         f"127.0.0.1:{port}", "--demo.speed", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    stop = threading.Event()
    outcomes: list[str] = []
    scrapers = [
        threading.Thread(target=_scrape_forever, args=(port, stop, outcomes)) for _ in range(4)
    ] + [threading.Thread(target=_scrape_kept_alive, args=(port, stop, outcomes)) for _ in range(2)]
    try:
        wait_for_port(port, timeout=30)
        stuck = socket.create_connection(("127.0.0.1", port), timeout=10)
        stuck.sendall(b"GET /metrics HTTP/1.1\r\n")  # never finishes its request
        for thread in scrapers:
            thread.start()
        deadline = time.monotonic() + 20
        while outcomes.count("ok") < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
        elapsed = time.monotonic() - sent
        stuck.settimeout(5)
        assert stuck.recv(100) == b""  # the stuck connection was closed, not left hanging
        stuck.close()
    finally:
        stop.set()
        for thread in scrapers:
            if thread.is_alive():
                thread.join(10)
        if process.poll() is None:
            process.kill()
            process.wait(5)
    assert process.returncode == 0, err
    assert elapsed < 2.0, f"shutdown took {elapsed:.2f}s"
    assert "cachewatch stopped" in out
    assert "Traceback" not in err
    assert outcomes.count("ok") >= 20
    assert "truncated" not in outcomes
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more


def test_sigterm_flushes_spans_within_two_seconds() -> None:
    """Spans waiting in the batch processor (a 60 s schedule: only shutdown sends them)
    reach a real OTLP receiver, and the process is gone within 2 s of SIGTERM."""
    with otlp_receiver() as receiver:
        port = free_port()
        environ = {
            k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CACHEWATCH_"))
        }
        environ.update(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_TRACES_SAMPLER": "always_on",
                "OTEL_BSP_SCHEDULE_DELAY": "60000",
                "OTEL_BSP_MAX_QUEUE_SIZE": "50000",
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "50000",
            }
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "cachewatch.cli", "demo", "--web.listen-address",
             f"127.0.0.1:{port}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ,
        )  # fmt: skip
        try:
            wait_for_port(port, timeout=30)
            for _ in range(3):
                with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                    conn.sendall(b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
                    while conn.recv(65536):
                        pass
            before = len(receiver.received())
            sent = time.monotonic()
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=10)
            elapsed = time.monotonic() - sent
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(5)
        polls = receiver.wait_for(
            lambda found: sum(s.name == "poll local" for s in found) >= 3, timeout=5
        )
    assert before == 0, "nothing was sent before shutdown (the schedule is 60 s)"
    assert sum(s.name == "poll local" for s in polls) >= 3
    assert process.returncode == 0, err
    assert elapsed < 2.0, f"shutdown took {elapsed:.2f}s"
