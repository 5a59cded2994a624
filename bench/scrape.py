"""cachewatch serve vs Debian's prometheus-redis-exporter, side by side on one Redis.

Starts redis-server on loopback with 200,000 keys in 4 prefixes and some traffic, runs
``cachewatch serve`` and ``prometheus-redis-exporter`` against it, and prints for each: median
and p95 scrape latency (interleaved scrapes, same run), RSS, Redis CPU per scrape (Redis's own
INFO commandstats), series count, and the ratios. Then the key census: Redis CPU per census
step at 200,000 and 1,000,000 keys, estimate accuracy before a full pass, and redis_exporter's
``-count-keys`` / ``-check-key-groups`` for the same prefixes. First, a three-master Redis
Cluster: every node scraped through cachewatch's ``/probe?target=HOST:PORT`` and through
redis_exporter's ``/scrape?target=redis://HOST:PORT``, interleaved, with the Redis CPU per
scrape on each node.

    .venv/bin/python bench/scrape.py [--keys 200000] [--scrapes 300] [--census-keys 1000000]
    .venv/bin/python bench/scrape.py --cluster-only [--cluster-keys 60000]
    .venv/bin/python bench/scrape.py --scrape-only [--keys 200000] [--scrapes 300]
        [--baseline TREE]   # and the cachewatch of another worktree, interleaved: before/after

The machine is shared: absolute figures are noisy, the ratios measured in the same run are
what to read.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.client
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil
import redis

from cachewatch.config import Config
from cachewatch.config.redisurl import CachePrefix
from cachewatch.sources.census import KeyCensus
from cachewatch.sources.redis import CensusCalls

REDIS_EXPORTER = "/usr/bin/prometheus-redis-exporter"
PREFIXES = {"users": "user:", "sessions": "session:", "products": "product:", "tokens": "token:"}
TRAFFIC = {"get", "set"}
CENSUS = {"scan", "memory|usage"}
SCRAPE_INTERVAL = 15.0
LATENCY_TARGET = 0.7
"""cachewatch serve's median and p95 scrape time over redis_exporter's, at most."""
RSS_TARGET_MIB = 32
"""cachewatch serve's RSS after the scrapes, tracing off, at most."""
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
CENSUS_INTERVAL = Config().redis_census_interval  # the defaults of cachewatch serve
BUDGET = Config().redis_census_keys
SAMPLES = Config().redis_census_samples

_FILL = """
local prefix, n, size = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local value = string.rep('v', size)
for i = 1, n do redis.call('SET', prefix .. i, value) end
return n
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@contextlib.contextmanager
def process(
    argv: Sequence[str], port: int, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for_port(port)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def fill(conn: redis.Redis, prefix: str, count: int, size: int = 32) -> None:
    done = 0
    while done < count:
        batch = min(100_000, count - done)
        conn.eval(_FILL, 0, f"{prefix}{done}-", batch, size)
        done += batch


def fill_prefixes(
    conn: redis.Redis, total: int, shares: dict[str, float] | None = None
) -> dict[str, int]:
    """Flush, then ``total`` keys split over the prefixes (equally unless ``shares``)."""
    conn.flushall()
    shares = shares or {name: 1 / len(PREFIXES) for name in PREFIXES}
    truth = {name: round(total * share) for name, share in shares.items()}
    for name, count in truth.items():
        fill(conn, PREFIXES[name], count)
    return truth


def commandstats(conn: redis.Redis) -> dict[str, float]:
    """usec per command, from Redis's own accounting."""
    return {
        key.removeprefix("cmdstat_"): float(value["usec"])
        for key, value in conn.info("commandstats").items()
    }


def usec_delta(before: dict[str, float], after: dict[str, float], only: set[str] | None = None,
               exclude: set[str] = frozenset()) -> float:  # type: ignore[assignment]  # fmt: skip
    total = 0.0
    for command, usec in after.items():
        if command in exclude or (only is not None and command not in only):
            continue
        total += usec - before.get(command, 0.0)
    return total


class Traffic:
    """A client reading and writing the cached keys, ~500 operations a second."""

    def __init__(self, url: str, keys_per_prefix: int) -> None:
        self.conn = redis.Redis.from_url(url)
        self.keys = keys_per_prefix
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        rng = random.Random(7)
        prefixes = list(PREFIXES.values())
        while not self.stop.wait(0.02):
            pipe = self.conn.pipeline(transaction=False)
            for _ in range(10):
                key = f"{rng.choice(prefixes)}0-{rng.randint(1, self.keys)}"
                if rng.random() < 0.8:
                    pipe.get(key)
                else:
                    pipe.set(key, "w" * 32)
            with contextlib.suppress(redis.RedisError):
                pipe.execute()

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        self.thread.join(5)


class Scraper:
    """One keep-alive connection to one exporter, read as Prometheus reads it: its Accept
    header (OpenMetrics first), gzip, the body decompressed and decoded.

    http.client rather than requests: requests spends ~0.6 ms of Python per request on this
    machine (a /-/healthy round trip: 0.81 ms through a requests.Session, 0.21 ms through
    http.client), the same for every exporter, which pulls every ratio towards 1 and is no
    part of what Prometheus's Go client pays."""

    def __init__(self, host: str, port: int) -> None:
        self.connection = http.client.HTTPConnection(host, port, timeout=30)

    def get(self, path: str) -> tuple[float, str]:
        start = time.perf_counter()
        self.connection.request(
            "GET", path, headers={"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"}
        )
        response = self.connection.getresponse()
        body = response.read()
        if response.getheader("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        text = body.decode("utf-8")
        took = time.perf_counter() - start
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {text[:200]}")
        return took, text

    def close(self) -> None:
        self.connection.close()


def series(text: str) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith("#")
               and "_created" not in line.split(" ")[0])  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def cachewatch_argv(url: str, port: int) -> list[str]:
    argv = [sys.executable, "-m", "cachewatch.cli", "serve", "--redis.addr", url,
            "--web.listen-address", f"127.0.0.1:{port}", "--log.level", "warn"]  # fmt: skip
    for name, prefix in PREFIXES.items():
        argv += ["--redis.cache", f"{name}={prefix}"]
    return argv


def side_by_side(
    url: str, conn: redis.Redis, scrapes: int, workdir: Path, baseline: Path | None = None
) -> None:
    """Interleaved scrapes of cachewatch and redis_exporter (and, with ``baseline``, of the
    cachewatch of that source tree, for a before/after of the same run)."""
    cw_port, re_port = free_port(), free_port()
    with contextlib.ExitStack() as stack:
        cw = stack.enter_context(
            process(cachewatch_argv(url, cw_port), cw_port, workdir / "cachewatch.log")
        )
        rex = stack.enter_context(
            process([REDIS_EXPORTER, "-redis.addr", url, "-web.listen-address",
                     f"127.0.0.1:{re_port}"], re_port, workdir / "redis_exporter.log")
        )  # fmt: skip
        targets = {"cachewatch": (cw, cw_port), "redis_exporter": (rex, re_port)}
        if baseline is not None:
            base_port = free_port()
            env = {**os.environ, "PYTHONPATH": str(baseline.resolve() / "exporter")}
            base = stack.enter_context(
                process(cachewatch_argv(url, base_port), base_port,
                        workdir / "baseline.log", env)
            )  # fmt: skip
            targets["baseline"] = (base, base_port)
        scrapers = {
            name: stack.enter_context(contextlib.closing(Scraper("127.0.0.1", port)))
            for name, (_, port) in targets.items()
        }
        for scraper in scrapers.values():
            for _ in range(20):
                scraper.get("/metrics")
        latencies: dict[str, list[float]] = {name: [] for name in targets}
        last: dict[str, str] = {}
        names = list(targets)
        for i in range(scrapes):
            shift = i % len(names)  # each one first, middle and last as often
            order = names[shift:] + names[:shift]
            for name in order if i % 2 == 0 else reversed(order):
                took, last[name] = scrapers[name].get("/metrics")
                latencies[name].append(took)
        # Redis CPU per scrape: each exporter alone, census and traffic commands excluded.
        cpu: dict[str, float] = {}
        n = max(50, scrapes // 3)
        for name, scraper in scrapers.items():
            before = commandstats(conn)
            for _ in range(n):
                scraper.get("/metrics")
            after = commandstats(conn)
            cpu[name] = usec_delta(before, after, exclude=TRAFFIC | CENSUS) / n / 1000
        rss = {name: psutil.Process(proc.pid).memory_info().rss / 2**20
               for name, (proc, _) in targets.items()}  # fmt: skip

    print(f"\n== scrapes of a {conn.dbsize():,}-key Redis with traffic ({scrapes} each, "
          "interleaved) ==")  # fmt: skip
    print(f"{'':16}{'median ms':>11}{'p95 ms':>9}{'RSS MiB':>9}{'Redis CPU ms/scrape':>21}"
          f"{'series':>8}")  # fmt: skip
    for name in targets:
        values = latencies[name]
        print(f"{name:16}{statistics.median(values) * 1000:11.2f}"
              f"{percentile(values, 0.95) * 1000:9.2f}{rss[name]:9.1f}{cpu[name]:21.3f}"
              f"{series(last[name]):8}")  # fmt: skip
    if baseline is not None:
        base_l, rex_l = latencies["baseline"], latencies["redis_exporter"]
        print(f"baseline ({baseline}): ratio to redis_exporter: median latency "
              f"{statistics.median(base_l) / statistics.median(rex_l):.2f}, p95 "
              f"{percentile(base_l, 0.95) / percentile(rex_l, 0.95):.2f}, RSS "
              f"{rss['baseline']:.1f} MiB")  # fmt: skip
    cw, rex = latencies["cachewatch"], latencies["redis_exporter"]
    print(f"ratio cachewatch/redis_exporter: median latency "
          f"{statistics.median(cw) / statistics.median(rex):.2f} (target <= {LATENCY_TARGET}), "
          f"p95 {percentile(cw, 0.95) / percentile(rex, 0.95):.2f} (target <= "
          f"{LATENCY_TARGET}), RSS {rss['cachewatch'] / rss['redis_exporter']:.2f}, Redis CPU "
          f"per scrape {cpu['cachewatch'] / cpu['redis_exporter']:.2f}")  # fmt: skip
    print(f"cachewatch RSS {rss['cachewatch']:.1f} MiB (target <= {RSS_TARGET_MIB} MiB, tracing "
          f"off; redis_exporter {rss['redis_exporter']:.1f} MiB)")  # fmt: skip


def start_cluster(workdir: Path, masters: int) -> list[tuple[int, subprocess.Popen[bytes]]]:
    """``masters`` cluster-enabled redis-servers sharing the slots; (port, process) each."""
    redis_server = shutil.which("redis-server") or "/usr/bin/redis-server"
    nodes = []
    for index in range(masters):
        port, bus = free_port(), free_port()
        node_dir = workdir / f"cluster{index}"
        node_dir.mkdir()
        argv = [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(node_dir), "--cluster-enabled", "yes",
                "--cluster-port", str(bus),
                "--cluster-config-file", str(node_dir / "nodes.conf")]  # fmt: skip
        with (node_dir / "redis.log").open("ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        wait_for_port(port)
        nodes.append((port, bus, proc))
    for index, (port, _, _) in enumerate(nodes):
        conn = redis.Redis(port=port)
        low, high = index * 16384 // masters, (index + 1) * 16384 // masters - 1
        conn.execute_command("CLUSTER", "ADDSLOTSRANGE", low, high)
        conn.execute_command("CLUSTER", "SET-CONFIG-EPOCH", index + 1)
        if index:
            conn.execute_command("CLUSTER", "MEET", "127.0.0.1", nodes[0][0], nodes[0][1])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        infos = [redis.Redis(port=p).cluster("info") for p, _, _ in nodes]
        if all(i["cluster_state"] == "ok" and int(i["cluster_known_nodes"]) == masters
               for i in infos):  # fmt: skip
            break
        time.sleep(0.1)
    else:
        raise RuntimeError("the cluster did not come up")
    return [(port, proc) for port, _, proc in nodes]


def fill_cluster(seed: int, keys: int) -> None:
    cluster = redis.RedisCluster(host="127.0.0.1", port=seed)
    prefixes = list(PREFIXES.values())
    for start in range(0, keys, 2000):
        pipe = cluster.pipeline()
        for i in range(start, min(keys, start + 2000)):
            pipe.set(f"{prefixes[i % len(prefixes)]}{i}", "v" * 32)
        pipe.execute()
    cluster.close()


def cluster_side_by_side(workdir: Path, keys: int, scrapes: int, masters: int = 3) -> None:
    """cachewatch's /probe per node vs redis_exporter's /scrape per node, on one cluster."""
    nodes = start_cluster(workdir, masters)
    try:
        ports = [port for port, _ in nodes]
        fill_cluster(ports[0], keys)
        cw_port, re_port = free_port(), free_port()
        argv = [*cachewatch_argv(f"redis://127.0.0.1:{ports[0]}/0", cw_port), "--redis.cluster"]
        with (
            process(argv, cw_port, workdir / "cachewatch-cluster.log") as cw,
            process([REDIS_EXPORTER, "-redis.addr", "", "-web.listen-address",
                     f"127.0.0.1:{re_port}"], re_port,
                    workdir / "redis_exporter-cluster.log") as rex,
        ):  # fmt: skip
            urls = {
                "cachewatch": [f"/probe?target=127.0.0.1:{p}" for p in ports],
                "redis_exporter": [f"/scrape?target=redis://127.0.0.1:{p}" for p in ports],
            }  # fmt: skip
            scrapers = {
                "cachewatch": Scraper("127.0.0.1", cw_port),
                "redis_exporter": Scraper("127.0.0.1", re_port),
            }
            for name, targets in urls.items():
                for _ in range(10):
                    for url in targets:
                        scrapers[name].get(url)
            latencies: dict[str, list[float]] = {name: [] for name in urls}
            last: dict[str, str] = {}
            for i in range(scrapes):
                order = list(urls) if i % 2 == 0 else list(reversed(urls))
                for name in order:
                    for url in urls[name]:
                        took, last[name] = scrapers[name].get(url)
                        latencies[name].append(took)
            # Redis CPU per scrape on each node, each exporter alone; the census excluded.
            cpu: dict[str, list[float]] = {name: [] for name in urls}
            n = max(30, scrapes // 3)
            for name, targets in urls.items():
                for port, url in zip(ports, targets, strict=True):
                    conn = redis.Redis(port=port)
                    before = commandstats(conn)
                    for _ in range(n):
                        scrapers[name].get(url)
                    after = commandstats(conn)
                    cpu[name].append(usec_delta(before, after, exclude=CENSUS | TRAFFIC) / n / 1000)
            rss = {name: psutil.Process(proc.pid).memory_info().rss / 2**20
                   for name, proc in (("cachewatch", cw), ("redis_exporter", rex))}  # fmt: skip
    finally:
        for _, proc in nodes:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)

    print(f"\n== a {masters}-master Redis Cluster, {keys:,} keys: every node scraped "
          f"({scrapes} rounds, interleaved): cachewatch /probe?target=HOST:PORT vs "
          "redis_exporter /scrape?target=redis://HOST:PORT ==")  # fmt: skip
    print(f"{'':16}{'median ms':>11}{'p95 ms':>9}{'RSS MiB':>9}  Redis CPU ms/scrape per node"
          f"{'':4}{'series':>8}")  # fmt: skip
    for name in urls:
        values = latencies[name]
        per_node = " ".join(f"{v:6.3f}" for v in cpu[name])
        print(f"{name:16}{statistics.median(values) * 1000:11.2f}"
              f"{percentile(values, 0.95) * 1000:9.2f}{rss[name]:9.1f}  {per_node:<32}"
              f"{series(last[name]):8}")  # fmt: skip
    cw_l, rex_l = latencies["cachewatch"], latencies["redis_exporter"]
    cw_cpu, rex_cpu = statistics.mean(cpu["cachewatch"]), statistics.mean(cpu["redis_exporter"])
    print(f"ratio cachewatch/redis_exporter: median latency "
          f"{statistics.median(cw_l) / statistics.median(rex_l):.2f} (target <= 1.0), p95 "
          f"{percentile(cw_l, 0.95) / percentile(rex_l, 0.95):.2f}, Redis CPU per scrape "
          f"{cw_cpu / rex_cpu:.2f}")  # fmt: skip


def census_steps(
    conn: redis.Redis, truth: dict[str, int], steps: int, checkpoints: Sequence[int] = ()
) -> tuple[float, float, Any]:
    """Redis CPU (ms) and wall time (ms) per census step at the default budget; prints the
    worst estimate error at each checkpoint (number of steps)."""
    caches = [CachePrefix(name, prefix) for name, prefix in PREFIXES.items()]
    census = KeyCensus(caches, keys_per_step=BUDGET, samples_per_step=SAMPLES, seed=1)
    calls = CensusCalls(conn)
    wall = 0.0
    per_step: list[float] = []
    for step in range(1, steps + 1):
        before = commandstats(conn)
        started = time.perf_counter()
        census.step(calls)
        wall += time.perf_counter() - started
        per_step.append(usec_delta(before, commandstats(conn), only=CENSUS) / 1000)
        if step in checkpoints:
            report = census.report()
            errors = {e.name: abs(e.size - truth[e.name]) / truth[e.name] for e in report.estimates}
            shown = ", ".join(f"{name} {error:.1%}" for name, error in errors.items())
            print(f"  after {step:3} steps ({report.progress:5.1%} of the key space): "
                  f"errors {shown}")  # fmt: skip
    # The median: on a shared machine a step descheduled inside Redis counts its wait as CPU.
    print(
        f"  Redis CPU per step: median {statistics.median(per_step):.3f} ms, mean "
        f"{statistics.mean(per_step):.3f} ms, p95 {percentile(per_step, 0.95):.3f} ms"
    )
    return statistics.median(per_step), wall / steps * 1000, census.report()


def count_keys_cpu(url: str, conn: redis.Redis, flag: list[str], workdir: Path,
                   scrapes: int = 3) -> float:  # fmt: skip
    port = free_port()
    argv = [REDIS_EXPORTER, "-redis.addr", url, "-web.listen-address", f"127.0.0.1:{port}", *flag]
    with (
        process(argv, port, workdir / "redis_exporter_keys.log"),
        contextlib.closing(Scraper("127.0.0.1", port)) as scraper,
    ):
        scraper.get("/metrics")
        before = commandstats(conn)
        for _ in range(scrapes):
            scraper.get("/metrics")
        after = commandstats(conn)
    return usec_delta(before, after, exclude=TRAFFIC) / scrapes / 1000


def census_report(label: str, cpu: float, wall: float, report: Any, truth: dict[str, int]) -> None:
    errors = [abs(e.size - truth[e.name]) / truth[e.name] for e in report.estimates]
    print(
        f"{label}: Redis CPU {cpu:.3f} ms per step (target <= 2 ms at 1,000,000 keys), "
        f"{wall:.1f} ms wall per step in Python; after the steps: pass progress "
        f"{report.progress:.1%}, worst estimate error {max(errors):.2%} (target <= 5%)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=200_000)
    parser.add_argument("--scrapes", type=int, default=300)
    parser.add_argument("--census-keys", type=int, default=1_000_000)
    parser.add_argument("--census-steps", type=int, default=100)
    parser.add_argument("--cluster-keys", type=int, default=60_000)
    parser.add_argument("--cluster-only", action="store_true",
                        help="only the three-master cluster scrape")  # fmt: skip
    parser.add_argument("--baseline", type=Path, metavar="TREE",
                        help="also scrape the cachewatch of this source tree")  # fmt: skip
    parser.add_argument("--scrape-only", action="store_true",
                        help="the standalone scrapes alone")  # fmt: skip
    args = parser.parse_args()
    redis_server = shutil.which("redis-server") or "/usr/bin/redis-server"
    with tempfile.TemporaryDirectory(prefix="cachewatch-bench-") as tmp:
        workdir = Path(tmp)
        if not args.scrape_only:
            cluster_side_by_side(workdir, args.cluster_keys, args.scrapes)
        if args.cluster_only:
            return 0
        port = free_port()
        argv = [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", tmp]  # fmt: skip
        with process(argv, port, workdir / "redis.log"):
            url = f"redis://127.0.0.1:{port}/0"
            conn = redis.Redis.from_url(url, socket_timeout=60)
            truth = fill_prefixes(conn, args.keys)
            with Traffic(url, args.keys // len(PREFIXES)):
                side_by_side(url, conn, args.scrapes, workdir, args.baseline)
                if args.scrape_only:
                    return 0
                print(f"\n== key census, 4 prefixes, default budget ({BUDGET} keys, "
                      f"{SAMPLES} samples a step) ==")  # fmt: skip
                cpu_200k, wall, report = census_steps(conn, truth, args.census_steps)
                census_report(f"{args.keys:,} keys", cpu_200k, wall, report, truth)
                patterns = ",".join(f"db0={prefix}*" for prefix in PREFIXES.values())
                count_keys = count_keys_cpu(url, conn, ["-count-keys", patterns], workdir)
                groups = count_keys_cpu(url, conn, ["-check-key-groups", "^(%a+):"], workdir)
            print(
                f"redis_exporter -count-keys for the 4 prefixes: Redis CPU {count_keys:.1f} ms "
                f"per scrape; -check-key-groups: {groups:.1f} ms per scrape"
            )
            per_scrape = cpu_200k * SCRAPE_INTERVAL / CENSUS_INTERVAL
            print(
                f"ratio -count-keys / census: {count_keys / cpu_200k:.0f}x per census step, "
                f"{count_keys / per_scrape:.0f}x per {SCRAPE_INTERVAL:.0f} s scrape interval "
                f"(census every {CENSUS_INTERVAL:.0f} s) (target >= 100x)"
            )
            shares = {"users": 0.40, "sessions": 0.30, "products": 0.25, "tokens": 0.05}
            truth = fill_prefixes(conn, args.census_keys, shares)
            print(f"{args.census_keys:,} keys, caches of 40%, 30%, 25% and 5% of the keys:")
            checkpoints = [1, 5, 10, 25, 50, 100, 200]
            cpu, wall, report = census_steps(conn, truth, args.census_steps, checkpoints)
            census_report(f"{args.census_keys:,} keys", cpu, wall, report, truth)
            full = args.census_keys / BUDGET * CENSUS_INTERVAL
            print(f"a full pass at {args.census_keys:,} keys takes {args.census_keys // BUDGET} "
                  f"steps, {full / 60:.0f} min at the default census interval; estimates are "
                  "scaled by progress before it, exact after it")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
