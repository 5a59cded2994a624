"""Instructions per operation of the hot paths, counted by valgrind's callgrind: unlike
wall-clock figures on a shared machine they repeat exactly, so a change of a few percent
shows. Compares package trees (``--tree``: the ``exporter`` folder of a checkout; default:
this one) in one run.

Counts one process with N operations and one with 2N, and prints the difference over N
(start-up cancels out; string hashing is fixed, so dictionaries lay out alike): a hit
through ``instrument()`` (``.get`` and ``[key]``), an empty ``trace_cache_operation``
block, a GET through a plain and an ``instrument_redis()`` client to a redis-server on
loopback started for this run, and one /metrics rendering of ``cachewatch serve`` polling
that server (in-process: poll, collect, encode, gzip; no HTTP). Needs Debian's valgrind.

    python bench/instructions.py [--tree ../main/exporter --tree exporter] [--ops 100000]
        [--only KIND]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from instrument_redis import redis_server

WORKLOAD = """
import sys
import cachewatch

n, kind, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
registry = cachewatch.CacheRegistry()
cache = cachewatch.instrument({f"key-{i}": i for i in range(1000)}, "bench", registry=registry)
if kind == "get":
    get = cache.get
    for _ in range(n):
        get("key-7")
elif kind == "[key]":
    for _ in range(n):
        cache["key-7"]
elif kind == "operation":
    operation = cachewatch.trace_cache_operation
    for _ in range(n):
        with operation("get", "remote", registry=registry) as op:
            op.hit()
elif kind == "scrape of serve (/metrics)":
    from cachewatch.config.load import load_config
    from cachewatch.exporter import serve_exporter
    from cachewatch.web.metrics import render

    caches = ["users=user:", "sessions=session:", "products=product:", "tokens=token:"]
    config = load_config(
        "serve",
        {"redis_addr": f"redis://127.0.0.1:{port}", "redis_caches": caches,
         "redis_census_interval": 3600.0},
        environ={},
    )  # fmt: skip
    exporter = serve_exporter(config)
    environ = {"HTTP_ACCEPT": "application/openmetrics-text;version=1.0.0",
               "HTTP_ACCEPT_ENCODING": "gzip", "QUERY_STRING": ""}  # fmt: skip
    for _ in range(n):
        render(exporter.registry, environ)
    exporter.close()
else:
    import redis

    client = redis.Redis(port=port)
    if kind == "redis GET, instrument_redis()":
        client = cachewatch.instrument_redis(client, {"e": "embedding:"}, registry=registry)
    client.set("embedding:1", b"x" * 100)
    for _ in range(n):
        client.get("embedding:1")
"""
KINDS = {  # operation -> share of --ops it runs (Redis round trips cost ~50 times a hit)
    "get": 1.0,
    "[key]": 1.0,
    "operation": 0.1,
    "redis GET, plain client": 0.05,
    "redis GET, instrument_redis()": 0.05,
    "scrape of serve (/metrics)": 0.001,  # ~5,000 hits: poll, collect, encode, gzip
}
MINIMUM = {"scrape of serve (/metrics)": 100}
"""Operations a kind runs at least (1,000 unless said)."""


def instructions(tree: Path, script: Path, n: int, kind: str, port: int) -> int:
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/cg.out",
             sys.executable, str(script), str(n), kind, str(port)],
            capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"},
        )  # fmt: skip
    found = re.search(r"Collected : ([\d,]+)", done.stderr)
    if found is None:
        raise SystemExit(f"callgrind said nothing countable: {done.stderr[-500:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", type=Path, help="an exporter/ folder")
    parser.add_argument("--ops", type=int, default=100_000)
    parser.add_argument("--only", choices=list(KINDS), action="append", metavar="KIND",
                        help="count these kinds alone (default: all)")  # fmt: skip
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    trees = args.tree or [Path(__file__).resolve().parent.parent / "exporter"]
    with tempfile.TemporaryDirectory() as workdir, redis_server() as port:
        script = Path(workdir) / "workload.py"
        script.write_text(WORKLOAD)
        results: dict[str, dict[Path, float]] = {}
        for kind, share in KINDS.items():
            if args.only and kind not in args.only:
                continue
            n = max(MINIMUM.get(kind, 1000), int(args.ops * share))
            for tree in trees:
                once = instructions(tree, script, n, kind, port)
                twice = instructions(tree, script, 2 * n, kind, port)
                results.setdefault(kind, {})[tree] = (twice - once) / n
    first = trees[0]
    for kind, per_tree in results.items():
        line = f"{kind:32s}"
        for tree, count in per_tree.items():
            line += f" {count:9.0f}"
            if tree != first:
                line += f" ({count / per_tree[first] - 1:+.1%})"
        print(line)
    print("instructions per operation; columns:", ", ".join(str(t) for t in trees))


if __name__ == "__main__":
    main()
