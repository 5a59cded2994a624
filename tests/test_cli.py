"""The command line: help, configuration precedence and one-line errors for mistakes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cachewatch.cli import main


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cachewatch.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


def test_help_lists_subcommands_and_defaults() -> None:
    top = run_cli("--help")
    assert top.returncode == 0
    for command in ("demo", "check-config"):
        assert command in top.stdout
    demo = run_cli("demo", "--help")
    assert "--web.listen-address" in demo.stdout
    assert "default: :10287" in demo.stdout
    assert "CACHEWATCH_WEB_LISTEN_ADDRESS" in demo.stdout


@pytest.mark.parametrize(
    ("args", "env", "names"),
    [
        (["demo", "--web.listen-address", "nope"], {}, "--web.listen-address"),
        (["demo", "--duration", "10 minutes"], {}, "--duration"),
        (["demo"], {"CACHEWATCH_SAMPLE_INTERVAL": "-5s"}, "CACHEWATCH_SAMPLE_INTERVAL"),
        (["demo"], {"CACHE_MEMORY_WARNING_THRESHOLD_MB": "lots"}, "CACHE_MEMORY_WARNING"),
        (["demo", "--no-such-flag"], {}, "--no-such-flag"),
        (["check-config", "/nonexistent/cachewatch.yml"], {}, "--config.file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], env: dict[str, str], names: str) -> None:
    result = run_cli(*args, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert names in lines[0]
    assert "Traceback" not in result.stderr


def test_check_config_accepts_a_good_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cachewatch.yml"
    path.write_text(
        "web:\n  listen_address: 127.0.0.1:9999\nalerts:\n  memory_warning_mb: 250\n"
        "sample_interval: 5s\n"
    )
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert '"web.listen-address": "127.0.0.1:9999"' in out
    assert '"alerts.memory-warning-mb": 250.0' in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("web:\n  listen_addres: :1\n", "unknown setting 'web.listen_addres'"),
        ("alerts:\n  hit_ratio_warning: 1.5\n", "alerts.hit_ratio_warning"),
        ("alerts:\n  memory_warning_mb: 900\n  memory_critical_mb: 800\n", "memory-critical"),
        ("web: [unclosed\n", "not valid YAML"),
        ("- a list\n", "must be a mapping"),
    ],
)
def test_check_config_rejects_bad_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(text)
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_check_config_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    path = tmp_path / "cachewatch.yml"
    path.write_text("alerts:\n  memory_warning_mb: 250\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "cachewatch.cli", "check-config", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before the command writes (as `| head -0`)
    try:
        err = process.stderr.read()
        process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 141
    assert err == ""  # no traceback, no "Exception ignored" at exit


def test_help_into_a_closed_pipe_ends_quietly() -> None:
    result = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m cachewatch.cli demo --help | head -n 1"],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.stdout.startswith("usage: cachewatch demo")
    assert result.stderr == ""
