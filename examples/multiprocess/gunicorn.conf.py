"""gunicorn with cachewatch in multi-process mode: every worker writes its caches to the
shared directory, a ``cachewatch serve`` started by the master publishes their aggregate
(and so do the workers, on the application's own ``/metrics``), and the master tells
cachewatch when a worker has ended.

    CACHEWATCH_MULTIPROCESS_DIR=/run/app-metrics gunicorn -c gunicorn.conf.py app:application

``CACHEWATCH_WEB_LISTEN_ADDRESS`` says where ``cachewatch serve`` listens (default :10287);
an application that already sets ``PROMETHEUS_MULTIPROC_DIR`` needs no variable of ours.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import cachewatch

workers = 4
preload_app = True  # import the application once; workers fork from the master
max_requests = 1000  # recycle workers: their counts stay in the totals
max_requests_jitter = 50


def _directory() -> str:
    return os.environ.get("CACHEWATCH_MULTIPROCESS_DIR") or os.environ["PROMETHEUS_MULTIPROC_DIR"]


# Before any hook: preload_app imports the application (whose caches and prometheus_client
# metrics open their files there) before gunicorn calls on_starting.
os.makedirs(_directory(), exist_ok=True)


def when_ready(server: Any) -> None:
    """One serving process beside the workers: stable trends and alert history, its own
    process metrics, and no Redis needed."""
    command = [sys.executable, "-m", "cachewatch.cli", "serve", "--multiprocess.dir", _directory()]
    server.cachewatch_serve = subprocess.Popen(command)


def child_exit(server: Any, worker: Any) -> None:
    cachewatch.mark_process_dead(worker.pid)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # prometheus_client's own live gauges
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    serve = getattr(server, "cachewatch_serve", None)
    if serve is not None:
        serve.terminate()
        serve.wait(10)
