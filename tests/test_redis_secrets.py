"""A password-protected Redis: the password works, and never shows in any output."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from .servers import ManagedProcess, RedisServer, free_port

PASSWORD = "Sup3r-S3cret-Pa55-w0rd"
WRONG = "Wr0ng-Guess-Pa55-zz9"


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="cachewatch-secrets-") as tmp:
        yield Path(tmp)


def _cachewatch(*args: str) -> list[str]:
    return [sys.executable, "-m", "cachewatch.cli", *args]


def _get(port: int, path: str) -> str:
    return requests.get(f"http://127.0.0.1:{port}{path}", timeout=10).text


def _scrape_until(port: int, needle: str, within: float = 10.0) -> str:
    for _ in range(int(within / 0.1)):
        text = _get(port, "/metrics")
        if needle in text:
            return text
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} not on /metrics within {within}s")


def test_password_works_and_never_leaks(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outputs: list[str] = []
    redis_dir = workdir / "redis"
    redis_dir.mkdir()
    redis = RedisServer(redis_dir, extra=["--requirepass", PASSWORD]).start()
    try:
        # 1. Password from the environment: it works.
        monkeypatch.setenv("CACHEWATCH_REDIS_PASSWORD", PASSWORD)
        port = free_port()
        serve_dir = workdir / "env"
        serve_dir.mkdir()
        serve = ManagedProcess(
            _cachewatch(
                "serve", "--redis.addr", f"redis://127.0.0.1:{redis.port}/0",
                "--redis.cache", "users=user:", "--redis.census-interval", "0.1",
                "--web.listen-address", f"127.0.0.1:{port}", "--log.level", "debug",
                "--redis.socket-timeout", "0.5", "--redis.connect-timeout", "0.5",
            ),
            port, serve_dir,
        ).start(timeout=20)  # fmt: skip
        try:
            outputs.append(_scrape_until(port, "redis_up 1.0"))
            outputs += [_get(port, "/health"), _get(port, "/")]
            redis.kill()  # errors now: connection refused, in /health and the logs
            outputs.append(_scrape_until(port, "redis_up 0.0"))
            outputs.append(_get(port, "/health"))
        finally:
            serve.stop()
        outputs.append(serve.log())
        assert "is down" in serve.log()

        # 2. Password in the URL, overridden by a wrong one in a file: auth fails, quietly.
        redis.start()
        monkeypatch.delenv("CACHEWATCH_REDIS_PASSWORD")
        password_file = workdir / "password"
        password_file.write_text(WRONG + "\n")
        port = free_port()
        serve_dir = workdir / "file"
        serve_dir.mkdir()
        serve = ManagedProcess(
            _cachewatch(
                "serve", "--redis.addr", f"redis://:{PASSWORD}@127.0.0.1:{redis.port}/0",
                "--redis.password-file", str(password_file),
                "--web.listen-address", f"127.0.0.1:{port}", "--log.level", "debug",
            ),
            port, serve_dir,
        ).start(timeout=20)  # fmt: skip
        try:
            outputs.append(_scrape_until(port, "redis_up 0.0"))
            health = _get(port, "/health")
            assert "Authentication" in health or "WRONGPASS" in health, health
            outputs.append(health)
        finally:
            serve.stop()
        outputs.append(serve.log())
        assert "redis://:***@127.0.0.1" in serve.log()
    finally:
        redis.stop()

    # 3. Help, check-config and a user mistake, with the password set everywhere it can be.
    config = workdir / "cachewatch.yml"
    config.write_text(
        f"redis:\n  addr: redis://:{PASSWORD}@127.0.0.1:6379/0\n  password: {PASSWORD}\n"
        "  caches:\n    users: 'user:'\n"
    )
    env_runs = [
        _cachewatch("serve", "--help"),
        _cachewatch("check-config", str(config)),
        _cachewatch("serve", "--redis.addr", f"redis://:{PASSWORD}@127.0.0.1:99999/0"),
        _cachewatch("serve", "--redis.addr", f"redis://:{PASSWORD}@127.0.0.1:6379/x"),
    ]
    for argv in env_runs:
        done = subprocess.run(
            argv, capture_output=True, timeout=60, env={"CACHEWATCH_REDIS_PASSWORD": PASSWORD,
                                                        "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        outputs += [done.stdout.decode(), done.stderr.decode()]
    assert '"redis.password": "<secret>"' in outputs[-6]  # check-config's stdout
    assert '"redis.cache": [\n    "users=user:"\n  ]' in outputs[-6]
    assert "invalid Redis address 'redis://:***@127.0.0.1:99999/0'" in outputs[-3]

    everything = "\n".join(outputs)
    assert len(everything) > 10_000  # we did look at real output
    assert PASSWORD not in everything
    assert WRONG not in everything
