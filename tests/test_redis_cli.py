"""``cachewatch serve`` settings: one-line errors with exit status 2, YAML, environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from cachewatch.cli import main
from cachewatch.config import files, load_config
from cachewatch.config.redisurl import CachePrefix, parse_redis_address


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_serve_without_an_address_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--redis.addr: required by serve" in _error(capsys, ["serve"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--redis.addr", "http://localhost:6379"], "scheme must be redis or rediss"),
        (["--redis.addr", "redis://localhost:6379/zero"], "must be a DB index"),
        (["--redis.addr", "redis://:6379"], "no host"),
        (["--redis.addr", "redis://h", "--redis.cache", "nameonly"], "use NAME=PREFIX"),
        (["--redis.addr", "redis://h", "--redis.cache", "a b=x:"], "invalid cache name"),
        (["--redis.addr", "redis://h", "--redis.cache", "a=x:", "--redis.cache", "a=y:"],
         "the name 'a' is given twice"),
        (["--redis.addr", "redis://h", "--redis.password-file", "/nonexistent/pw"],
         "--redis.password-file: cannot read /nonexistent/pw"),
        (["--redis.addr", "redis://h", "--redis.tls-ca-file", "/etc/hostname"],
         "TLS files need a rediss:// address"),
        (["--redis.addr", "rediss://h", "--redis.tls-cert-file", "/etc/hostname"],
         "go together"),
        (["--redis.addr", "redis://h", "--redis.socket-timeout", "0"], "greater than zero"),
        (["--redis.addr", "redis://h", "--redis.census-keys", "5"], "0 (off) or 10 to 100000"),
    ],
)  # fmt: skip
def test_mistakes(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert message in _error(capsys, ["serve", *argv])


def test_address_parsing() -> None:
    address = parse_redis_address("rediss://alice:p%40ss@cache.example:6380/3")
    assert (address.tls, address.host, address.port, address.db) == (True, "cache.example", 6380, 3)
    assert address.username == "alice" and address.password is not None
    assert address.password.reveal() == "p@ss"
    assert str(address) == "rediss://alice:***@cache.example:6380/3"
    assert "p@ss" not in repr(address)
    assert str(parse_redis_address("redis://[::1]")) == "redis://[::1]:6379/0"


def test_yaml_mapping_environment_and_flags(tmp_path: Path) -> None:
    config_file = tmp_path / "cachewatch.yml"
    config_file.write_text(
        "redis:\n  addr: redis://localhost:6379/2\n  caches:\n    users: 'user:'\n"
        "    sessions: 'session:'\n  census_keys: 500\n"
    )
    password_file = tmp_path / "pw"
    password_file.write_text("from-file\nignored\n")
    config = load_config(
        "serve",
        {"config_file": str(config_file), "redis_password_file": str(password_file)},
        environ={"CACHEWATCH_REDIS_SOCKET_TIMEOUT": "750ms"},
    )
    assert config.redis_caches == (
        CachePrefix("users", "user:"),
        CachePrefix("sessions", "session:"),
    )
    assert config.redis_census_keys == 500
    assert config.redis_socket_timeout == 0.75
    settings = files.redis_settings(config)
    assert settings.address.db == 2
    assert settings.password is not None and settings.password.reveal() == "from-file"
    # Flags win over the file, a repeated flag lists several caches.
    config = load_config(
        "serve",
        {"config_file": str(config_file), "redis_caches": ["a=a:", "b=b:"]},
        environ={"CACHEWATCH_REDIS_PASSWORD": "from-env"},
    )
    assert [c.name for c in config.redis_caches] == ["a", "b"]
    assert files.redis_settings(config).password.reveal() == "from-env"  # type: ignore[union-attr]
    assert "from-env" not in repr(config)


def test_yaml_cache_mapping_errors_name_the_setting(tmp_path: Path) -> None:
    config_file = tmp_path / "cachewatch.yml"
    config_file.write_text("redis:\n  caches:\n    users:\n")
    with pytest.raises(Exception, match=r"redis\.cache"):
        load_config("serve", {"config_file": str(config_file)}, environ={})


def test_serve_polls_redis_without_importing_redis_py() -> None:
    """The Redis source speaks RESP itself (``sources/resp.py``): redis-py, with the asyncio
    and OpenTelemetry modules that redis-py 8 imports, never enters the serving process."""
    import subprocess
    import sys

    from .servers import redis_server

    with redis_server() as server:
        code = (
            "import sys\n"
            "import cachewatch, cachewatch.cli, cachewatch.cli.run, cachewatch.exporter\n"
            "from cachewatch.config import RedisSettings\n"
            "from cachewatch.config.redisurl import parse_redis_address\n"
            "from cachewatch.sources.redis import RedisSource\n"
            f"source = RedisSource(RedisSettings(parse_redis_address({server.url!r})))\n"
            "snapshot = source.poll()\n"
            "source.census_step()\n"
            "source.close()\n"
            "assert snapshot.up, snapshot.error\n"
            "loaded = sorted(m for m in sys.modules if m.partition('.')[0] in "
            "('redis', 'asyncio', 'opentelemetry'))\n"
            "print(loaded or 'none')\n"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.stdout.decode().strip() == "none", done.stderr.decode()
