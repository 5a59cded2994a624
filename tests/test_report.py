"""cachewatch report: the /report of a running cachewatch, as a table or JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cachewatch import Exporter
from cachewatch.cli import main
from cachewatch.web.server import HttpServer

from .analysis_helpers import feed_thrashing_and_calm
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
