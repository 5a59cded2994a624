"""Celery prefork workers with cachewatch in multi-process mode: each pool process writes its
caches to the shared directory, and ``cachewatch serve --multiprocess.dir DIR`` beside the
worker publishes the aggregate.

    CACHEWATCH_MULTIPROCESS_DIR=/tmp/tasks celery -A celery_app worker --pool prefork \\
        --concurrency 4 --max-tasks-per-child 100

Celery's pool processes end by ``os._exit``, past ``atexit``: the
``worker_process_shutdown`` handler below writes each one's last counts as it ends.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_process_shutdown

import cachewatch

app = Celery(
    "cachewatch_example",
    broker=os.environ.get("CELERY_BROKER_URL", "redis://localhost:6379/0"),
    backend=os.environ.get("CELERY_RESULT_BACKEND", "redis://localhost:6379/1"),
)
app.conf.worker_prefetch_multiplier = 1

cache = cachewatch.instrument({f"hit-{i}": i for i in range(100)}, "task_cache")


@app.task
def lookup(key: str) -> bool:
    return cache.get(key) is not None


@worker_process_shutdown.connect
def flush_cachewatch(**_: Any) -> None:
    cachewatch.flush(exiting=True)
