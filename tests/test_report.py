"""cachewatch report: the /report of a running cachewatch, as a table or JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests

import cachewatch
from cachewatch import CacheRegistry, Exporter
from cachewatch.cli import main
from cachewatch.web.server import HttpServer

from .analysis_helpers import analysis_config, feed_thrashing_and_calm
from .servers import free_port


def test_report_command_prints_a_table_and_json(
    exporter: Exporter, http: HttpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_thrashing_and_calm(exporter)
    url = f"http://127.0.0.1:{http.port}"
    assert main(["report", "--url", url]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("CACHE"))
    assert "HIT%" in header and "EVICT/PUT" in header and "FULL IN" in header
    thrash_row = next(line for line in out.splitlines() if line.startswith("thrash "))
    assert "20.0" in thrash_row and "0.88" in thrash_row and "critical" in thrash_row
    assert "advice hit ratio 20.0% with 0.88 evictions per put" in out
    statistics = out.split("alerts since start:\n", 1)[1].splitlines()
    assert any(
        line.startswith("  CacheHitRatioLow thrash: fired 1 time, ")
        and line.endswith("(firing now)")
        for line in statistics
    ), statistics
    assert main(["report", "--url", url + "/", "--json"]) == 0
    parsed = json.loads(capsys.readouterr().out)
    assert {c["cache"] for c in parsed["caches"]} == {"thrash", "calm"}


def test_report_command_fails_in_one_line_when_unreachable() -> None:
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "cachewatch.cli", "report", "--url", f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"cachewatch: error: cannot reach cachewatch at http://127.0.0.1:{port}/report: "
        "connection refused"
    )
    bad = subprocess.run(
        [sys.executable, "-m", "cachewatch.cli", "report", "--url", "localhost:1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "--url" in bad.stderr


def run_report(*args: str, columns: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run(
        [sys.executable, "-m", "cachewatch.cli", "report", *args],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip


def test_the_report_fits_the_terminal_width(exporter: Exporter, http: HttpServer) -> None:
    feed_thrashing_and_calm(exporter)
    url = f"http://127.0.0.1:{http.port}"
    wide = run_report("--url", url)  # into a pipe, no $COLUMNS: every column
    assert wide.returncode == 0, wide.stderr
    header = next(line for line in wide.stdout.splitlines() if line.startswith("CACHE"))
    assert header.split() == [
        "CACHE", "REQ/S", "HIT%", "HIT%", "WIN", "P99", "ERR%", "ENTRIES", "MEMORY",
        "EVICT/PUT", "EXPIRED", "CLEAN/H", "MEM/S", "FULL", "IN", "STATUS",
    ]  # fmt: skip
    assert max(len(line) for line in wide.stdout.splitlines()) > 100
    for columns in (100, 80, 60, 40, 24, 16):
        narrow = run_report("--url", url, columns=columns)
        assert narrow.returncode == 0, narrow.stderr
        lines = narrow.stdout.splitlines()
        too_long = [line for line in lines if len(line) > columns]
        assert not too_long, (columns, too_long)
        text = narrow.stdout
        assert "thrash" in text and "calm" in text and "critical" in text, (columns, text)
        assert "capacity is not" not in text  # the thrashing cache's advice is capacity
        assert "evicted before they are reused" in " ".join(text.split())
    at_80 = run_report("--url", url, columns=80).stdout
    table = next(line for line in at_80.splitlines() if line.startswith("CACHE"))
    assert "HIT%" in table and "STATUS" in table and "EXPIRED" not in table
    assert "columns left out to fit 80 columns" in " ".join(at_80.split())
    # Too narrow for any table: one block of lines per cache.
    blocks = run_report("--url", url, columns=16).stdout.splitlines()
    assert "thrash" in blocks and any(line.split()[:2] == ["HIT%", "20.0"] for line in blocks)


def test_the_report_lists_every_cache_from_the_first_scrape(
    exporter: Exporter, http: HttpServer, cache_table: CacheRegistry
) -> None:
    analysis = exporter.attach_analysis(analysis_config(sample_interval=3600.0), start=False)
    analysis.sampler.sample()  # the sampler's first sample: no caches yet
    late = [
        cachewatch.instrument({}, name, registry=cache_table) for name in ("late_one", "late_two")
    ]
    for cache in late:
        cache["k"] = "v"
    url = f"http://127.0.0.1:{http.port}"
    assert "cache_size" in requests.get(f"{url}/metrics", timeout=5).text  # a scrape
    result = run_report("--url", url)
    assert result.returncode == 0, result.stderr
    assert "no caches" not in result.stdout
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "late_one" in rows and "late_two" in rows
    body = requests.get(f"{url}/report", timeout=5).json()
    (first,) = [c for c in body["caches"] if c["cache"] == "late_one"]
    assert first["entries"]["size"] == 1 and first["requests"]["puts"] == 1
    assert first["hit_ratio"]["recent"] is None  # nothing sampled yet: not made up


def test_report_json_into_head_ends_quietly(
    exporter: Exporter, http: HttpServer, cache_table: CacheRegistry
) -> None:
    exporter.attach_analysis(analysis_config(), start=False)
    for i in range(150):  # a report larger than a pipe's buffer
        cachewatch.instrument({}, f"cache_{i:03d}", registry=cache_table)
    url = f"http://127.0.0.1:{http.port}"
    assert len(requests.get(f"{url}/report", timeout=5).content) > 128 * 1024  # a pipe holds 64 KiB
    command = (
        f"{sys.executable} -m cachewatch.cli report --json --url {url} | head -n 3; "
        'echo "status=${PIPESTATUS[0]}" >&2'
    )
    result = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.stdout.splitlines()[0] == "{"
    assert len(result.stdout.splitlines()) == 3
    assert result.stderr == "status=141\n"  # as a program ended by SIGPIPE, and nothing else


def test_alert_statistics_read_as_sentences() -> None:
    from cachewatch.cli.report import statistics_line

    record = {
        "alertname": "CacheMemoryHigh", "cache": "c1", "fired": 3, "resolved": 2,
        "firing_now": False, "firing_seconds": 900.0, "mean_time_to_resolve_seconds": 300.0,
        "last_fired": 1000.0, "last_resolved": 1600.0,
    }  # fmt: skip
    assert statistics_line(record, 1660.0) == (
        "CacheMemoryHigh c1: fired 3 times, 15m firing in all, resolved after 5m on average; "
        "last fired 11m ago, last resolved 60s ago"
    )
    never = {**record, "fired": 1, "resolved": 0, "firing_now": True,
             "mean_time_to_resolve_seconds": None, "last_resolved": None}  # fmt: skip
    assert statistics_line(never, 1060.0).endswith(
        "fired 1 time, 15m firing in all; last fired 60s ago, last resolved never (firing now)"
    )
