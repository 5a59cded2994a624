"""A missing optional extra ends a command with one line naming it, never a traceback; the
table of extras matches pyproject.toml's. The extras are made missing for real in a child
process: an import hook installed by ``sitecustomize`` refuses their modules, as an
environment without them would."""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import requests

from cachewatch.cli.extras import EXTRAS, missing_extra

ROOT = Path(__file__).resolve().parent.parent
HIDE = """
import importlib.abc, os, sys

class Hide(importlib.abc.MetaPathFinder):
    hidden = os.environ["HIDE_MODULES"].split(",")

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.hidden:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Hide())
"""


def run_without(tmp_path: Path, module: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "sitecustomize.py").write_text(HIDE)
    return subprocess.run(
        [sys.executable, "-m", "cachewatch.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path), "HIDE_MODULES": module},
    )


@pytest.mark.parametrize(
    ("module", "extra", "args"),
    [
        ("grafana_foundation_sdk", "dashboards", ["generate", "--output", "out"]),
    ],
)  # fmt: skip
def test_a_missing_extra_is_one_line_naming_it(
    tmp_path: Path, module: str, extra: str, args: list[str]
) -> None:
    result = run_without(tmp_path, module, *args)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        f"cachewatch: error: cachewatch {args[0]} needs the optional '{extra}' extra, "
        f"which is not installed: pip install 'cachewatch[{extra}]'"
    )


def test_serve_needs_no_redis_extra(tmp_path: Path) -> None:
    """``serve`` speaks RESP itself: without redis-py it still polls a real Redis; the
    ``redis`` extra is for instrumenting an application's redis-py client."""
    from .servers import free_port, redis_server, wait_for_port

    (tmp_path / "sitecustomize.py").write_text(HIDE)
    port = free_port()
    with redis_server() as server:
        serving = subprocess.Popen(
            [sys.executable, "-m", "cachewatch.cli", "serve", "--redis.addr", server.url,
             "--web.listen-address", f"127.0.0.1:{port}", "--log.level", "warn"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path), "HIDE_MODULES": "redis"},
        )  # fmt: skip
        try:
            wait_for_port(port, timeout=30)
            text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        finally:
            serving.terminate()
            _, stderr = serving.communicate(timeout=20)
    assert "\nredis_up 1.0\n" in text or "\nredis_up 1\n" in text, text[:2000]
    assert "Traceback" not in stderr, stderr


def test_the_hidden_module_is_really_missing_in_the_child(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(HIDE)
    probe = subprocess.run(
        [sys.executable, "-c", "import grafana_foundation_sdk"],
        capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path),
             "HIDE_MODULES": "grafana_foundation_sdk"},
    )  # fmt: skip
    assert probe.returncode == 1 and "ModuleNotFoundError" in probe.stderr


def normalized(distribution: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def test_every_extra_of_pyproject_is_known_by_its_modules() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    extras.pop("test")
    assert set(EXTRAS.values()) == set(extras)
    owners = importlib.metadata.packages_distributions()
    for module, extra in EXTRAS.items():
        wanted = {normalized(re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0]) for r in extras[extra]}
        found = {normalized(name) for name in owners[module.partition(".")[0]]}
        assert found & wanted, (module, extra, found, wanted)
        importlib.import_module(module)  # the module the extra brings is there


@pytest.mark.parametrize(
    ("missing", "extra"),
    [
        ("opentelemetry.exporter.zipkin.json", "zipkin"),
        ("opentelemetry.instrumentation.requests", "instrumentation"),
        ("opentelemetry.sdk", "tracing"),
        ("redis", "redis"),
        ("requests", None),
    ],
)
def test_the_innermost_module_names_the_extra(missing: str, extra: str | None) -> None:
    assert missing_extra(ModuleNotFoundError(f"No module named {missing!r}", name=missing)) == (
        extra
    )


def test_readme_names_every_extra() -> None:
    readme = (ROOT / "README.md").read_text()
    for extra in set(EXTRAS.values()):
        assert f"cachewatch[{extra}]" in readme, extra
