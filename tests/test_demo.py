"""The demo as a user runs it: a real process that serves, moves, and stops cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from .scrape import samples, value
from .servers import free_port, wait_for_port


def test_demo_serves_moving_counters_and_stops_on_ctrl_c() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cachewatch.cli", "demo", "--web.listen-address",
         f"127.0.0.1:{port}", "--duration", "2m", "--demo.speed", "60", "--seed", "7"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        wait_for_port(port, timeout=30)
        first = samples(port)
        deadline = time.monotonic() + 20
        moved = False
        while time.monotonic() < deadline and not moved:
            time.sleep(1)
            second = samples(port)
            moved = all(
                (value(second, "cache_gets_total", cache=name, result="hit") or 0)
                > (value(first, "cache_gets_total", cache=name, result="hit") or 0)
                for name in ("embedding_cache", "search_cache", "file_cache", "project_cache")
            )
        assert moved, "the demo's hit counters did not move"
        assert (value(second, "cache_evictions_total", cache="embedding_cache") or 0) >= 0
        assert (value(second, "cachewatch_cache_memory_bytes", cache="embedding_cache") or 0) > 0
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    assert process.returncode == 0, err
    assert f"http://127.0.0.1:{port}/metrics" in out
    assert "cachewatch stopped" in out
    assert "Traceback" not in err


def test_demo_stops_by_itself_after_duration() -> None:
    port = free_port()
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "cachewatch.cli", "demo", "--web.listen-address",
         f"127.0.0.1:{port}", "--duration", "3s"],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 30
    assert "cachewatch stopped" in result.stdout


def test_demo_workload_phases_change_hit_ratio() -> None:
    from cachewatch import CacheRegistry
    from cachewatch.demo import DemoWorkload

    registry = CacheRegistry()
    workload = DemoWorkload(seed=1, registry=registry)
    now = [0.0]
    workload.clock.now = lambda: now[0]
    workload.clock.start = 0.0
    for _ in range(40):
        workload.tick()
    steady = registry.recorder("search_cache").snapshot()
    now[0] = 100.0  # the cold phase (1 to 3 minutes into the cycle at speed 1)
    assert workload.clock.phase() == "cold"
    for _ in range(40):
        workload.tick()
    cold = registry.recorder("search_cache").snapshot()
    steady_ratio = steady.hits / steady.gets
    cold_ratio = (cold.hits - steady.hits) / (cold.gets - steady.gets)
    assert cold_ratio < steady_ratio - 0.2
    errors = registry.recorder("file_cache").snapshot().error_count
    assert errors > 0


def test_the_demo_tells_its_story() -> None:
    """At speed 6 a cycle takes 50 s: the steady phase 10 s, then the cold phase, whose
    alerts fire within seconds; the analysis follows the speed."""
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "cachewatch.cli", "demo", "--web.listen-address",
         f"127.0.0.1:{port}", "--duration", "24s", "--demo.speed", "6", "--seed", "7"],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout.splitlines()
    assert "the demo cycles through its phases every 50s: steady 10s, cold 20s, growth 20s" in out
    assert "live: each cache's hit ratio over the last 5s, and the alerts firing" in out
    phases = [line.split()[3].rstrip(":") for line in out if " -- phase " in line]
    assert phases == ["steady", "cold"]
    live = [line for line in out if line.split()[1:2] in (["steady"], ["cold"])]
    assert live and all("embedding" in line and "alerts:" in line for line in live)
    # Hit ratios over the recent window: high in the steady phase, low once it is cold.
    steady = [line for line in live if line.split()[1] == "steady" and "%" in line]
    cold = [line for line in live if line.split()[1] == "cold"]
    assert any("search 9" in line or "search 100%" in line for line in steady), steady
    assert any(" 0 firing" not in line for line in cold), cold
    recap = out.index(next(line for line in out if line.startswith("recap after 0:2")))
    assert out[recap].endswith("(phases: steady, cold):")
    fired = out[recap + 1 : -2]
    assert any(line.split()[0] == "CacheHitRatioLow" for line in fired), fired
    assert all(" fired 0:" in line for line in fired)
    assert out[-2].split(",")[0].endswith(" fired") and "every transition: /alerts" in out[-2]
    assert out[-1] == "cachewatch stopped"
    assert "Traceback" not in result.stderr
