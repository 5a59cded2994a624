"""The multi-process recipes of examples/multiprocess, run for real: gunicorn (4 workers,
recycled with ``--max-requests``), uWSGI, ``multiprocessing.Pool``, ``ProcessPoolExecutor``
and Celery prefork workers against a real redis-server broker. After a known sequence of
lookups and one flush interval, every scrape reports exactly that many lookups with the
exact hit/miss split, never lower than the scrape before, across the recycling."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from .scrape import fetch, samples, value
from .servers import ManagedProcess, RedisServer, free_port, require_binary, wait_for_port

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "multiprocess"
BIN = Path(sys.executable).parent
FLUSH = 0.2
LOOKUPS = 240  # two in three are hits
pytestmark = pytest.mark.slow


def lookups(n: int = LOOKUPS) -> list[str]:
    return [f"hit-{i % 100}" if i % 3 else f"miss-{i}" for i in range(n)]


def expected_split(n: int = LOOKUPS) -> tuple[int, int]:
    hits = sum(1 for key in lookups(n) if key.startswith("hit-"))
    return hits, n - hits


def environment(directory: Path, variable: str = "CACHEWATCH_MULTIPROCESS_DIR") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("CACHEWATCH_MULTIPROCESS_DIR", "PROMETHEUS_MULTIPROC_DIR")}  # fmt: skip
    env.update({variable: str(directory), "CACHEWATCH_MULTIPROCESS_FLUSH_INTERVAL": f"{FLUSH}s",
                "PYTHONPATH": str(EXAMPLES)})  # fmt: skip
    return env


class Process(ManagedProcess):
    def __init__(self, argv: list[str], port: int, workdir: Path, env: dict[str, str]) -> None:
        super().__init__(argv, port, workdir)
        self.env = env

    def start(self, timeout: float = 30.0) -> Process:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv, cwd=EXAMPLES, stdout=log, stderr=subprocess.STDOUT, env=self.env
        )
        try:
            wait_for_port(self.port, timeout)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"{self.argv[0]} did not start: {self.log()[-3000:]}") from None
        return self


@contextlib.contextmanager
def cachewatch_serve(directory: Path, workdir: Path) -> Iterator[int]:
    """``cachewatch serve --multiprocess.dir`` beside the workers (no Redis)."""
    port = free_port()
    argv = [str(BIN / "cachewatch"), "serve", "--multiprocess.dir", str(directory),
            "--web.listen-address", f"127.0.0.1:{port}"]  # fmt: skip
    server = Process(argv, port, workdir, environment(directory)).start()
    try:
        yield port
    finally:
        server.stop()


def gets(port: int, cache: str) -> tuple[float | None, float | None]:
    found = samples(port)
    return (
        value(found, "cache_gets_total", cache=cache, result="hit"),
        value(found, "cache_gets_total", cache=cache, result="miss"),
    )


def assert_exact_and_monotonic(ports: list[int], cache: str, expected: tuple[int, int]) -> None:
    """Once the last flush is in (one interval; longer on a loaded machine, never lower on
    the way), 10 successive scrapes of each serving process report exactly ``expected``."""
    time.sleep(FLUSH)
    for port in ports:
        wait_until_exact(port, cache, expected, timeout=15)
        seen = [gets(port, cache) for _ in range(10)]
        assert seen == [(float(expected[0]), float(expected[1]))] * 10, (port, seen)


def wait_until_exact(port: int, cache: str, expected: tuple[int, int], timeout: float) -> None:
    """Scrape until the aggregate reaches ``expected``; it must never go down on the way."""
    previous = (0.0, 0.0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = gets(port, cache)
        assert now[0] is None or (now[0] >= previous[0] and (now[1] or 0) >= previous[1]), now
        if now == (float(expected[0]), float(expected[1])):
            return
        previous = (now[0] or 0.0, now[1] or 0.0)
        time.sleep(0.1)
    raise AssertionError(f"still {gets(port, cache)}, expected {expected}")


def report_counts(
    port: int, cache: str, expected: tuple[int, int], timeout: float = 20.0
) -> tuple[int, int] | None:
    """The hits and misses /report gives for ``cache``, once its sample has caught up with
    ``expected`` (or the last ones seen)."""
    deadline = time.monotonic() + timeout
    found = None
    while time.monotonic() < deadline:
        report = requests.get(f"http://127.0.0.1:{port}/report", timeout=10).json()
        entry = next((c for c in report["caches"] if c["cache"] == cache), None)
        if entry is not None:
            found = (entry["requests"]["hits"], entry["requests"]["misses"])
            if found == expected:
                return found
        time.sleep(0.25)
    return found


def test_gunicorn_with_recycled_workers(tmp_path: Path) -> None:
    """PROMETHEUS_MULTIPROC_DIR alone turns it on; the app's own prometheus_client counter
    and cachewatch's families share one /metrics that promtool accepts."""
    directory = tmp_path / "metrics"
    port, serve_port = free_port(), free_port()
    env = environment(directory, "PROMETHEUS_MULTIPROC_DIR")
    env["CACHEWATCH_WEB_LISTEN_ADDRESS"] = f"127.0.0.1:{serve_port}"
    env["CACHEWATCH_SAMPLE_INTERVAL"] = "500ms"
    argv = [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
            "--max-requests", "25", "--max-requests-jitter", "0", "app:application"]  # fmt: skip
    gunicorn = Process(argv, port, tmp_path, env).start()
    try:
        wait_for_port(serve_port, 30)
        session = requests.Session()
        previous = 0.0
        for i, key in enumerate(lookups()):
            assert session.get(f"http://127.0.0.1:{port}/lookup?key={key}", timeout=10).ok
            if i % 60 == 59:  # scrapes during the run never go down either
                hits = gets(serve_port, "lookup_cache")[0] or 0.0
                assert hits >= previous
                previous = hits
        assert_exact_and_monotonic([serve_port, port], "lookup_cache", expected_split())
        found = samples(serve_port)
        assert value(found, "cache_puts_total", cache="lookup_cache") == 100  # the master's
        assert value(found, "app_requests_total") == LOOKUPS
        recycled = gunicorn.log().count("Booting worker") - 4
        assert recycled >= LOOKUPS // 25 - 4  # only a partial batch per worker is not
        text = fetch(port)
        check = subprocess.run(
            [require_binary("promtool"), "check", "metrics"], input=text, capture_output=True,
            text=True, timeout=60,
        )  # fmt: skip
        assert check.returncode == 0, check.stdout + check.stderr
        names = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
        assert len(names) == len(set(names)) and "app_requests_total" in names
        # A worker's own process metrics would jump from scrape to scrape: left out there;
        # the one serving process beside the workers publishes its own.
        assert "process_cpu_seconds_total" not in names
        assert value(found, "process_cpu_seconds_total") is not None
        health = requests.get(f"http://127.0.0.1:{port}/health", timeout=10)
        assert health.status_code == 200, health.text
        # The analysis runs over the aggregate: the report counts every worker's lookups.
        hits, misses = expected_split()
        for reporter in (serve_port, port):
            assert report_counts(reporter, "lookup_cache", (hits, misses)) == (hits, misses)
    finally:
        gunicorn.stop(timeout=15)
    assert not any(p.name.startswith(".") for p in directory.iterdir())


def test_uwsgi_with_recycled_workers(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    port = free_port()
    argv = [str(BIN / "uwsgi"), "--ini", "uwsgi.ini", "--http-socket", f"127.0.0.1:{port}",
            "--max-requests", "25", "--min-worker-lifetime", "0",
            "--virtualenv", str(BIN.parent)]  # fmt: skip
    uwsgi = Process(argv, port, tmp_path, environment(directory)).start()
    try:
        for key in lookups():  # a connection each: a recycled worker closes its own
            assert requests.get(f"http://127.0.0.1:{port}/lookup?key={key}", timeout=10).ok
        assert_exact_and_monotonic([port], "lookup_cache", expected_split())
        assert uwsgi.log().count("is done. Seeya!") >= LOOKUPS // 25 - 4
    finally:
        uwsgi.stop(timeout=15)


@pytest.mark.parametrize("kind", ["pool", "executor"])
def test_process_pools_with_recycled_workers(tmp_path: Path, kind: str) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    with cachewatch_serve(directory, tmp_path) as port:
        done = subprocess.run(
            [sys.executable, str(EXAMPLES / "pool.py"), kind, str(LOOKUPS)],
            env=environment(directory), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        hits, misses = expected_split()
        assert done.stdout.strip() == f"hits={hits} misses={misses}"
        assert_exact_and_monotonic([port], "batch_cache", (hits, misses))
        found = samples(port)
        assert value(found, "cachewatch_multiprocess_processes", state="live") == 0


def test_celery_prefork_workers_against_a_redis_broker(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    broker = RedisServer(tmp_path)
    broker.start()
    env = environment(directory)
    env.update(CELERY_BROKER_URL=f"redis://127.0.0.1:{broker.port}/0",
               CELERY_RESULT_BACKEND=f"redis://127.0.0.1:{broker.port}/1")  # fmt: skip
    log = (tmp_path / "celery.log").open("ab")
    worker = subprocess.Popen(
        [str(BIN / "celery"), "-A", "celery_app", "worker", "--pool", "prefork",
         "--concurrency", "4", "--max-tasks-per-child", "20", "--without-gossip",
         "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"],
        cwd=EXAMPLES, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        with cachewatch_serve(directory, tmp_path) as port:
            client = subprocess.run(
                [sys.executable, "-c", CELERY_CLIENT, str(LOOKUPS)], env=env, cwd=EXAMPLES,
                capture_output=True, text=True, timeout=180,
            )  # fmt: skip
            assert client.returncode == 0, client.stderr[-3000:]
            hits, misses = expected_split()
            assert client.stdout.strip() == f"hits={hits} misses={misses}"
            wait_until_exact(port, "task_cache", (hits, misses), timeout=30)
            assert_exact_and_monotonic([port], "task_cache", (hits, misses))
            archived = value(samples(port), "cachewatch_multiprocess_archived_processes_total")
            assert archived is not None and archived >= LOOKUPS // 20 - 4  # recycled children
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)
        broker.stop()


CELERY_CLIENT = """
import sys
from celery_app import lookup
n = int(sys.argv[1])
keys = [f"hit-{i % 100}" if i % 3 else f"miss-{i}" for i in range(n)]
results = [lookup.delay(key) for key in keys]
found = [r.get(timeout=120) for r in results]
print(f"hits={sum(found)} misses={len(found) - sum(found)}")
"""


def test_serve_needs_an_existing_directory(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "cachewatch"), "serve", "--multiprocess.dir", str(tmp_path / "nope")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"cachewatch: error: --multiprocess.dir: {tmp_path / 'nope'} is not a directory"
    )


SHARED_PORT = """
import os, sys, time, cachewatch
port, stop = int(sys.argv[1]), sys.argv[2]
cache = cachewatch.instrument({"k": 1}, "shared_port_cache")
children = []
for n in range(3):
    pid = os.fork()
    if pid == 0:
        for _ in range(10 * (n + 1)):
            cache.get("k")
        cache.get("absent")
        cachewatch.start_http_server(port)   # every worker, the same port: no EADDRINUSE
        cachewatch.flush()
        while not os.path.exists(stop):
            time.sleep(0.05)
        os._exit(0)
    children.append(pid)
codes = [os.waitpid(pid, 0)[1] for pid in children]
sys.exit(0 if codes == [0, 0, 0] else 1)
"""


def test_every_worker_may_serve_the_same_port(tmp_path: Path) -> None:
    """prometheus_client's habit, start_http_server in each worker, works in multi-process
    mode: the workers share the port and each answers with the aggregate."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    port, stop = free_port(), tmp_path / "stop"
    app = subprocess.Popen(
        [sys.executable, "-c", SHARED_PORT, str(port), str(stop)], env=environment(directory)
    )
    try:
        wait_for_port(port, 30)
        wait_until_exact(port, "shared_port_cache", (60, 3), timeout=15)
        seen = {gets(port, "shared_port_cache") for _ in range(20)}  # new connections each
        assert seen == {(60.0, 3.0)}
    finally:
        stop.touch()
        try:
            assert app.wait(30) == 0
        finally:
            if app.poll() is None:
                app.kill()
                app.wait(10)
