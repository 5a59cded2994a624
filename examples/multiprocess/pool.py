"""``multiprocessing.Pool`` and ``ProcessPoolExecutor`` with cachewatch in multi-process mode:
each worker process writes its caches to the shared directory as it goes and when it ends
(recycled after ``maxtasksperchild`` tasks, or at the pool's close), and ``cachewatch serve
--multiprocess.dir DIR`` (or the parent, with ``make_wsgi_app()``) publishes the aggregate.

    CACHEWATCH_MULTIPROCESS_DIR=/tmp/batch python pool.py pool 3000

Close and join a ``Pool`` before leaving it: ``terminate()``, which ``with Pool()`` calls
on exit, kills the workers before their last flush. ``ProcessPoolExecutor`` ends its
workers cleanly on ``shutdown()``.
"""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor

import cachewatch

cache = cachewatch.instrument({f"hit-{i}": i for i in range(100)}, "batch_cache")


def lookup(key: str) -> bool:
    return cache.get(key) is not None


def keys(n: int) -> list[str]:
    """``n`` lookups, two in three of them hits."""
    return [f"hit-{i % 100}" if i % 3 else f"miss-{i}" for i in range(n)]


def run_pool(work: list[str], workers: int = 4, tasks_per_child: int = 20) -> list[bool]:
    pool = multiprocessing.get_context("fork").Pool(workers, maxtasksperchild=tasks_per_child)
    try:
        results = pool.map(lookup, work, chunksize=10)
    finally:
        pool.close()  # not terminate(): the workers end cleanly, with their last flush
        pool.join()
    return results


def run_executor(work: list[str], workers: int = 4, tasks_per_child: int = 20) -> list[bool]:
    context = multiprocessing.get_context("spawn")  # what max_tasks_per_child requires
    with ProcessPoolExecutor(
        workers, mp_context=context, max_tasks_per_child=tasks_per_child
    ) as ex:
        return list(ex.map(lookup, work, chunksize=10))


if __name__ == "__main__":
    kind, count = sys.argv[1], int(sys.argv[2])
    results = (run_pool if kind == "pool" else run_executor)(keys(count))
    print(f"hits={sum(results)} misses={len(results) - sum(results)}")
