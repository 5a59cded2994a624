"""A WSGI application with one instrumented cache, for gunicorn and uWSGI.

``/lookup?key=K`` looks ``K`` up in the cache (the keys ``hit-0`` ... ``hit-99`` are there
from the start, nothing else is ever stored, so every lookup's result is known in advance);
``/metrics`` and cachewatch's other endpoints are mounted as they are. In multi-process
mode (``CACHEWATCH_MULTIPROCESS_DIR`` or ``PROMETHEUS_MULTIPROC_DIR``) whichever worker
answers ``/metrics`` publishes the aggregate of all workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import Counter

import cachewatch

PRELOADED = 100
REQUESTS = Counter("app_requests", "Requests served, the application's own metric.")
"""With ``PROMETHEUS_MULTIPROC_DIR`` set, prometheus_client keeps it in that directory, and
cachewatch's /metrics publishes it beside the caches."""

cache = cachewatch.instrument({}, "lookup_cache", max_entries=10_000)
for i in range(PRELOADED):
    cache[f"hit-{i}"] = i

cachewatch_app = cachewatch.make_wsgi_app()


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/lookup":
        REQUESTS.inc()
        key = parse_qs(environ.get("QUERY_STRING", "")).get("key", [""])[0]
        found = cache.get(key)
        body = b"hit\n" if found is not None else b"miss\n"
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        )
        return [body]
    return cachewatch_app(environ, start_response)
