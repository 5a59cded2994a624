"""Settings: flags > environment > YAML > defaults; durations; the groups each part is handed;
the files that settings name, read once."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from cachewatch.config import (
    AlertSettings,
    AnalysisSettings,
    BundleSettings,
    Config,
    ConfigError,
    DemoSettings,
    ListenAddress,
    TracingOptions,
    files,
    format_duration,
    load_config,
    parse_duration,
)


def test_precedence_flags_over_environment_over_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("sample_interval: 1m\ntrend_window: 2h\nalerts:\n  memory_warning_mb: 100\n")
    env = {"CACHEWATCH_SAMPLE_INTERVAL": "30s", "CACHE_MEMORY_WARNING_THRESHOLD_MB": "200"}
    config = load_config("demo", {"config_file": str(path), "sample_interval": "10s"}, environ=env)
    assert config.sample_interval == 10  # flag
    assert config.memory_warning_mb == 200  # environment over file
    assert config.trend_window == 7200  # file over default
    assert config.web_listen_address == ListenAddress("", 10287)  # default
    with pytest.raises(ConfigError, match="CACHEWATCH_TREND_WINDOW"):
        load_config("demo", {}, environ={"CACHEWATCH_TREND_WINDOW": "soon"})


@pytest.mark.parametrize(
    ("text", "seconds"), [("15s", 15), ("1h30m", 5400), ("500ms", 0.5), ("90", 90), ("2d", 172800)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.5, "500ms"), (1.5, "1500ms"), (15, "15s"), (1800, "30m"), (5400, "1h30m"),
     (90061, "1d1h1m1s"), (0.0005, "0.5ms")],
)  # fmt: skip
def test_one_spelling_of_a_duration(seconds: float, text: str) -> None:
    """Prometheus takes whole numbers of one unit each: a fraction of a second is written
    in milliseconds, and what is written parses back to the same time."""
    assert format_duration(seconds) == text
    if seconds >= 0.001:
        assert parse_duration(text) == pytest.approx(seconds)


def test_groups_copy_their_fields_from_the_config() -> None:
    config = load_config(
        "serve",
        {"hit_ratio_warning": "0.9", "sample_interval": "5s", "tracing_record_keys": "true"},
        environ={},
    )
    assert config.alerts.hit_ratio_warning == 0.9
    assert config.analysis.sample_interval == 5 and config.analysis.hit_ratio_warning == 0.9
    assert config.bundle.hit_ratio_warning == 0.9 and config.bundle.grafana_url
    assert config.tracing.tracing_record_keys is True
    fields = {f.name: f for f in dataclasses.fields(Config)}
    defaults = Config()
    for group in (AlertSettings, AnalysisSettings, BundleSettings, DemoSettings, TracingOptions):
        for field in dataclasses.fields(group):
            assert field.name in fields, (group.__name__, field.name)
            assert field.default == getattr(defaults, field.name), (group.__name__, field.name)


def test_yaml_errors_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text("sample_interval: 10s\nalerts: [unclosed\n")
    with pytest.raises(
        ConfigError, match=r"--config\.file: .*broken\.yml line \d+: not valid YAML"
    ):
        load_config("serve", {"config_file": str(path)}, environ={})
    with pytest.raises(ConfigError, match="cannot read"):
        load_config("serve", {"config_file": str(tmp_path / "absent.yml")}, environ={})


def test_the_files_settings_name_are_read_once_into_their_settings(tmp_path: Path) -> None:
    password = tmp_path / "pw"
    password.write_text("s3cret\nsecond line ignored\n")
    config = load_config(
        "serve",
        {"redis_addr": "redis://127.0.0.1:6390/1", "redis_password_file": str(password)},
        environ={},
    )
    read = files.read_files(config, redis=True)
    assert read.web_config is None and read.probe is None
    assert read.redis is not None and read.redis.password is not None
    assert read.redis.password.reveal() == "s3cret" and read.redis.address.db == 1
    assert "s3cret" not in repr(read)
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users:\n  prometheus: plain-text\n")
    bad = dataclasses.replace(config, web_config_file=str(web))
    with pytest.raises(ConfigError, match=r"--web\.config\.file: .*not a bcrypt hash") as caught:
        files.read_files(bad)
    assert "plain-text" not in str(caught.value)


def test_sentinel_settings_and_their_credentials(tmp_path: Path) -> None:
    redis_pw = tmp_path / "redis.pw"
    redis_pw.write_text("from-a-file\n")
    env = {
        "CACHEWATCH_REDIS_SENTINEL_ADDR": "10.0.0.1,10.0.0.2:26380,rediss://10.0.0.3",
        "CACHEWATCH_REDIS_SENTINEL_MASTER": "cache-primary",
        "CACHEWATCH_REDIS_SENTINEL_PASSWORD": "from-the-environment",
        "CACHEWATCH_REDIS_PASSWORD_FILE": str(redis_pw),
    }
    config = load_config("serve", {}, environ=env)
    read = files.read_files(config, redis=True)
    assert read.redis is not None and read.redis.sentinel is not None
    sentinel = read.redis.sentinel
    assert [str(a) for a in sentinel.addresses] == [
        "redis://10.0.0.1:26379/0", "redis://10.0.0.2:26380/0", "rediss://10.0.0.3:26379/0"
    ]  # fmt: skip
    assert sentinel.master_name == "cache-primary"
    assert sentinel.password is not None and sentinel.password.reveal() == "from-the-environment"
    assert read.redis.password is not None and read.redis.password.reveal() == "from-a-file"
    text = read.redis.redact("auth failed: from-the-environment / from-a-file")
    assert "from-" not in text and "from-" not in repr(read)
    sentinel_pw = tmp_path / "sentinel.pw"
    sentinel_pw.write_text("sentinel-file\n")
    from_file = load_config(
        "serve",
        {"redis_sentinel_password_file": str(sentinel_pw)},
        environ={k: v for k, v in env.items() if "SENTINEL_PASSWORD" not in k},
    )
    got = files.read_files(from_file, redis=True).redis
    assert got is not None and got.sentinel is not None and got.sentinel.password is not None
    assert got.sentinel.password.reveal() == "sentinel-file"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"redis_sentinel_addrs": ["s1"]}, r"--redis\.sentinel-master: required"),
        ({"redis_sentinel_master": "m"}, r"--redis\.sentinel-addr: required"),
        (
            {"redis_sentinel_addrs": ["s1"], "redis_sentinel_master": "m", "redis_cluster": "true"},
            r"--redis\.cluster: a Redis Cluster has no Sentinels",
        ),
        ({"redis_cluster": "true"}, r"--redis\.addr: required with --redis\.cluster"),
        (
            {"redis_sentinel_addrs": ["s1"], "redis_sentinel_master": "bad name!"},
            r"invalid master name",
        ),
    ],
)
def test_topology_mistakes_are_one_line_errors(flags: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=message):
        load_config("serve", flags, environ={})
