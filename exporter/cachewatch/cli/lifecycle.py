"""Running a cachewatch process: serve HTTP, print where, reload on SIGHUP, stop cleanly on
SIGINT or SIGTERM."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from types import FrameType

from ..config import ListenAddress
from ..config.webconfig import WebConfigError
from ..exporter import Exporter
from ..web.routes import make_wsgi_app
from ..web.server import HttpServer, serve

log = logging.getLogger(__name__)


class ListenError(RuntimeError):
    """The HTTP address cannot be bound (in use, not ours, not resolvable)."""


M_ARENA_MAX = -8
MALLOC_ARENAS = 2


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas, as ``MALLOC_ARENA_MAX`` would (unless that is set).

    glibc gives threads their own arenas (up to 8 per core), each keeping freed memory; with a
    thread per connection, 50 concurrent scrapers left about 1.5 MiB more resident than two
    arenas do, for no speed gain under the GIL. Only for cachewatch's own processes (an
    application embedding cachewatch keeps its allocator as it is); a no-op off glibc.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        libc = ctypes.CDLL(None)  # this process's symbols, libc's among them (no find_library:
        # it runs ldconfig and imports subprocess)
        return bool(libc.mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False


def start(exporter: Exporter, address: ListenAddress) -> HttpServer:
    try:
        return serve(make_wsgi_app(exporter), address.bind_host, address.port, exporter.web_config)
    except OSError as exc:
        raise ListenError(f"cannot listen on {address}: {exc.strerror or exc}") from None
    except WebConfigError as exc:
        raise ListenError(f"--web.config.file: {exc}") from None


def urls(server: HttpServer, exporter: Exporter) -> list[str]:
    host = server.host
    if host in ("0.0.0.0", "::", ""):
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    base = f"{server.scheme}://{host}:{server.port}"
    return [f"{base}/", f"{base}/metrics", *(f"{base}{path}" for path in exporter.routes)]


SIGNAL_CHECK_SECONDS = 0.1


def _wait(stop: threading.Event, timeout: float) -> bool:
    """``stop.wait(timeout)`` in short slices. The kernel may deliver SIGTERM to any thread;
    CPython then runs the handler only when the main thread next runs bytecode, which a long
    ``Event.wait`` would delay by up to its whole timeout (seen: 5 s under load)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if stop.wait(max(0.0, min(SIGNAL_CHECK_SECONDS, left))):
            return True
        if left <= SIGNAL_CHECK_SECONDS:
            return False


def run_until_stopped(
    exporter: Exporter,
    address: ListenAddress,
    *,
    duration: float = 0.0,
    status: Callable[[], Iterable[str]] | None = None,
    status_every: float = 1.0,
    epilogue: Callable[[], Iterable[str]] | None = None,
    out: Callable[[str], None] = print,
) -> int:
    """Serve until SIGINT/SIGTERM or ``duration`` seconds; every ``status_every`` seconds
    print the lines ``status`` gives, and those of ``epilogue`` once stopped."""
    limit_malloc_arenas()
    server = start(exporter, address)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    def say(lines: Iterable[str]) -> None:
        for line in lines:
            out(line)
        sys.stdout.flush()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, exporter.sighup_handler())
    out("cachewatch is serving:")
    say(f"  {url}" for url in urls(server, exporter))
    deadline = time.monotonic() + duration if duration > 0 else None
    try:
        while not stop.is_set():
            if status is not None:
                say(status())
            timeout = status_every
            if deadline is not None:
                timeout = min(timeout, max(0.0, deadline - time.monotonic()))
            if _wait(stop, timeout):
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
    finally:
        server.shutdown()
        exporter.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if epilogue is not None:
        say(epilogue())
    out("cachewatch stopped")
    return 0
