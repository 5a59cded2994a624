"""Reloading the configuration file of a running process: ``POST /-/reload`` (behind basic
auth, POST only) and SIGHUP, in ``cachewatch demo`` and in an application embedding
cachewatch; a bad file is refused in one log line and the running settings stay."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest
import requests

from cachewatch import CacheRegistry, Exporter
from cachewatch.config import Config, load_config
from cachewatch.config.files import SettingsFiles
from cachewatch.exporter import build
from cachewatch.sources.local import LocalSource

from .servers import free_port, wait_for_port

PASSWORD = "reload-test-password"
THRESHOLD = 'cachewatch_alert_threshold{alertname="CacheHitRatioLow",cache="%s",severity="warning"}'


@dataclass
class Running:
    process: subprocess.Popen[str]
    base: str
    config: Path
    log: Path

    def metric(self, cache: str = "") -> float | None:
        text = requests.get(f"{self.base}/metrics", auth=("ops", PASSWORD), timeout=5).text
        for line in text.splitlines():
            if line.startswith(THRESHOLD % cache + " "):
                return float(line.rsplit(" ", 1)[1])
        return None

    def reload(self, **kwargs: object) -> requests.Response:
        kwargs.setdefault("auth", ("ops", PASSWORD))
        return requests.post(f"{self.base}/-/reload", timeout=10, **kwargs)  # type: ignore[arg-type]

    def logged(self, text: str) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if text in line]


def until(check: Callable[[], object], timeout: float = 15.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("reload")
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    web = root / "web.yml"
    web.write_text(f"basic_auth_users:\n  ops: {hashed}\n")
    config, log = root / "cachewatch.yml", root / "stderr.log"
    config.write_text("alerts:\n  hit_ratio_warning: 0.8\n")
    port = free_port()
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "cachewatch.cli", "demo", "--web.listen-address",
             f"127.0.0.1:{port}", "--config.file", str(config), "--web.config.file", str(web)],
            stdout=subprocess.DEVNULL, stderr=stderr, text=True,
        )  # fmt: skip
    try:
        wait_for_port(port, timeout=30)
        yield Running(process, f"http://127.0.0.1:{port}", config, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def test_reload_is_post_only_and_behind_basic_auth(demo: Running) -> None:
    assert demo.reload(auth=None).status_code == 401
    assert demo.reload(auth=("ops", "wrong")).status_code == 401
    got = requests.get(f"{demo.base}/-/reload", auth=("ops", PASSWORD), timeout=5)
    assert (got.status_code, got.headers["Allow"]) == (405, "POST")
    assert (
        requests.post(f"{demo.base}/metrics", auth=("ops", PASSWORD), timeout=5).status_code == 405
    )
    assert demo.reload().json() == {
        "status": "success", "restart_needed": [], "generate_needed": False,
    }  # fmt: skip


def test_post_reload_applies_thresholds_at_once_and_refuses_a_bad_file(demo: Running) -> None:
    demo.config.write_text(
        "alerts:\n  hit_ratio_warning: 0.9\n  overrides: {search_cache: {hit_ratio_warning: 0.6}}\n"
    )
    assert demo.reload().status_code == 200
    assert demo.metric() == 0.9 and demo.metric("search_cache") == 0.6
    alerts = requests.get(f"{demo.base}/alerts", auth=("ops", PASSWORD), timeout=5).json()
    (hit,) = [d for d in alerts["definitions"] if d["alertname"] == "CacheHitRatioLow"]
    assert hit["thresholds"][0]["value"] == 0.9 and hit["thresholds"][0]["origin"] == "setting"
    assert hit["cache_thresholds"][0]["origin"] == "config file"

    demo.config.write_text(
        "alerts:\n  custom: [{alert: CacheX, metric: cache_size, op: '=>', threshold: 1}]\n"
    )
    refused = demo.reload()
    assert refused.status_code == 400
    assert "alerts.custom[0] (CacheX).op: invalid operator '=>'" in refused.json()["error"]
    assert demo.metric() == 0.9 and demo.metric("search_cache") == 0.6  # the running ones stay
    (line,) = until(lambda: demo.logged("reload refused"))  # type: ignore[misc]
    assert "the running settings stay" in line and "invalid operator" in line


def test_sighup_reloads_and_names_what_needs_a_restart_or_generate(demo: Running) -> None:
    demo.config.write_text("sample_interval: 3s\nalerts:\n  hit_ratio_warning: 0.7\n  for: 1m\n")
    demo.process.send_signal(signal.SIGHUP)
    until(lambda: demo.metric() == 0.7)
    assert demo.metric("search_cache") is None  # the override is gone with the file's
    until(lambda: demo.logged("need a restart"))
    (restart,) = demo.logged("need a restart")
    assert "sample-interval" in restart
    assert demo.logged("run cachewatch generate")  # alerts.for is in the rules themselves

    demo.config.write_text("alerts: [not, a, mapping]\n")
    refusals = len(demo.logged("reload refused"))
    demo.process.send_signal(signal.SIGHUP)
    until(lambda: len(demo.logged("reload refused")) > refusals)
    assert demo.process.poll() is None and demo.metric() == 0.7
    assert "Traceback" not in demo.log.read_text()


EMBEDDED = """\
import sys, time
import cachewatch
cache = cachewatch.instrument({}, "app_cache")
cachewatch.start_http_server(int(sys.argv[1]))
cachewatch.configure_alert_threshold("CacheHitRatioLow", 0.65, cache="app_cache")
print("ready", flush=True)
for _ in range(600):  # the main thread runs Python code, as an application's does: a signal
    time.sleep(0.1)  # another thread received is handled when it next does
"""


def test_an_embedding_application_reloads_on_sighup(tmp_path: Path) -> None:
    config = tmp_path / "cachewatch.yml"
    config.write_text("alerts:\n  hit_ratio_warning: 0.8\n")
    port = free_port()
    script = tmp_path / "app.py"
    script.write_text(EMBEDDED)
    env = {"CACHEWATCH_CONFIG_FILE": str(config), "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen(
        [sys.executable, str(script), str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        running = Running(process, f"http://127.0.0.1:{port}", config, tmp_path / "none")
        assert running.metric() == 0.8 and running.metric("app_cache") == 0.65
        config.write_text("alerts:\n  hit_ratio_warning: 0.6\n  hit_ratio_critical: 0.4\n")
        process.send_signal(signal.SIGHUP)
        try:
            until(lambda: running.metric() == 0.6, timeout=40)
        except AssertionError:
            process.kill()
            raise AssertionError(process.communicate(timeout=5)[1]) from None
        assert running.metric("app_cache") == 0.65  # set by the application: it stays
        assert process.poll() is None
    finally:
        process.kill()
        process.wait(5)


def test_an_application_s_own_sighup_handler_is_left_alone(exporter: Exporter) -> None:
    def mine(_signum: int, _frame: object) -> None: ...

    previous = signal.signal(signal.SIGHUP, mine)
    try:
        assert exporter.reload_on_sighup() is False
        assert signal.getsignal(signal.SIGHUP) is mine
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_a_sighup_ignored_by_nohup_still_reloads(exporter: Exporter) -> None:
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # what nohup hands down
    try:
        assert exporter.reload_on_sighup() is True
        assert signal.getsignal(signal.SIGHUP) not in (signal.SIG_IGN, signal.SIG_DFL)
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_an_exporter_without_a_configuration_says_so(exporter: Exporter) -> None:
    result = exporter.reload()
    assert not result.ok and "no configuration" in result.error


def test_a_setting_waiting_for_a_restart_is_named_until_the_restart(tmp_path: Path) -> None:
    config_file = tmp_path / "cachewatch.yml"
    config_file.write_text("trend_window: 30m\n")
    flags = {"config_file": str(config_file)}

    def load() -> Config:
        return load_config("serve", flags, environ={})

    registry = CacheRegistry()
    exporter = build(load(), SettingsFiles(), [LocalSource(registry)], registry, reload=load)
    try:
        config_file.write_text("trend_window: 10m\nalerts:\n  hit_ratio_warning: 0.9\n")
        assert exporter.reload().restart_needed == ("trend-window",)
        config_file.write_text("trend_window: 10m\nalerts:\n  hit_ratio_warning: 0.85\n")
        assert exporter.reload().restart_needed == ("trend-window",)  # still 30m running
        config_file.write_text("trend_window: 30m\n")
        assert exporter.reload().restart_needed == ()  # back to what runs
    finally:
        exporter.close()
