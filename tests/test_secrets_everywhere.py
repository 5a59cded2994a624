"""Every output of cachewatch, searched for every password it was given: the Redis password
(environment, URL, password file, probe target file), the basic-auth password of its own
web configuration, and any other setting declared secret. None may appear anywhere: not in
/metrics, /health, /report, /alerts, /probe, the landing page, 401 and 404 bodies, logs at
debug level, error messages, --help, check-config's output, the alerts commands, or the files
``cachewatch generate`` writes; the SMTP password of the compose env file is in every
process's environment meanwhile."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import requests
from scripts import stack

from cachewatch.cli.main import COMMANDS
from cachewatch.config import settings

from .receivers import smtp_server, webhook_server
from .servers import ManagedProcess, RedisServer, free_port, require_binary, wait_for_port

REDIS_PASSWORD = "rEd1s-Pa55-9f3b71"
WRONG_PASSWORD = "wr0ng-Pa55-0c4d22"
WEB_PASSWORD = "w3b-Pa55-5e8a13"
SMTP_PASSWORD = "smtp-Pa55-2b6f90"
ALERTMANAGER_PASSWORD = "am-Pa55-8c1d44"
OTHER_SECRETS = {
    meta.env: f"s3cret-{meta.key.replace('.', '-')}-77"
    for _, meta, _ in settings()
    if meta.secret and meta.key != "redis.password"
}
"""Any other setting declared secret (SMTP credentials, when they exist) gets its own value."""
SECRETS = [
    REDIS_PASSWORD, WRONG_PASSWORD, WEB_PASSWORD, SMTP_PASSWORD, ALERTMANAGER_PASSWORD,
    *OTHER_SECRETS.values(),
]  # fmt: skip


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="cachewatch-secrets-all-") as tmp:
        yield Path(tmp)


def cachewatch(*args: str) -> list[str]:
    return [sys.executable, "-m", "cachewatch.cli", *args]


def env(**extra: str) -> dict[str, str]:
    """The environment of every run: the SMTP password of the compose env file is there too,
    as it would be in a container started from that file."""
    return {"PATH": "/usr/bin:/bin", "SMTP_PASSWORD": SMTP_PASSWORD, **OTHER_SECRETS, **extra}


def write_configs(workdir: Path, redis_port: int) -> tuple[Path, Path]:
    (workdir / "redis.password").write_text(REDIS_PASSWORD + "\n")
    (workdir / "wrong.password").write_text(WRONG_PASSWORD + "\n")
    probe = workdir / "probe.yml"
    probe.write_text(
        "targets:\n"
        f"  main:\n    address: redis://127.0.0.1:{redis_port}/0\n"
        "    password_file: redis.password\n    caches: {users: 'user:'}\n"
        f"  wrong:\n    address: redis://127.0.0.1:{redis_port}/0\n"
        "    password_file: wrong.password\n"
    )
    web = workdir / "web.yml"
    hashed = bcrypt.hashpw(WEB_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    web.write_text(f"basic_auth_users:\n  prometheus: {hashed}\n")
    return probe, web


def collect_http(port: int) -> list[str]:
    auth = ("prometheus", WEB_PASSWORD)
    base = f"http://127.0.0.1:{port}"
    texts = []
    for path in ("/", "/metrics", "/health", "/report", "/alerts", "/probe?target=main",
                 "/probe?target=wrong", "/probe?target=nowhere", "/nowhere"):  # fmt: skip
        texts.append(requests.get(base + path, auth=auth, timeout=15).text)
    texts.append(requests.get(base + "/metrics", auth=("prometheus", "guess"), timeout=15).text)
    return texts


def test_no_output_shows_any_password(workdir: Path) -> None:
    outputs: list[str] = []
    redis_dir = workdir / "redis"
    redis_dir.mkdir()
    redis = RedisServer(redis_dir, extra=["--requirepass", REDIS_PASSWORD]).start()
    probe, web = write_configs(workdir, redis.port)
    port = free_port()
    argv = cachewatch(
        "serve", "--redis.addr", f"redis://127.0.0.1:{redis.port}/0",
        "--redis.cache", "users=user:", "--redis.census-interval", "0.1",
        "--probe.config.file", str(probe), "--web.config.file", str(web),
        "--web.listen-address", f"127.0.0.1:{port}", "--log.level", "debug",
        "--sample-interval", "0.2", "--redis.connect-timeout", "0.5",
        "--redis.socket-timeout", "0.5",
    )  # fmt: skip
    serve_dir = workdir / "serve"
    serve_dir.mkdir()
    server = ManagedProcess(argv, port, serve_dir)
    server.process = subprocess.Popen(
        argv,
        cwd=serve_dir,
        stdout=server.log_path.open("ab"),
        stderr=subprocess.STDOUT,
        env=env(CACHEWATCH_REDIS_PASSWORD=REDIS_PASSWORD),
    )
    try:
        wait_for_port(port, timeout=30)
        time.sleep(0.5)  # a few samples for /report and /alerts
        healthy = collect_http(port)
        assert "redis_up 1.0" in healthy[1], "the password from the environment works"
        assert "redis_up 1.0" in healthy[5], "the password from the probe file works"
        assert "redis_up 0.0" in healthy[6], "the wrong password fails"
        outputs += healthy
        redis.kill()  # errors everywhere now: /health, /report, logs
        time.sleep(0.5)
        outputs += collect_http(port)
        report = subprocess.run(
            cachewatch("report", "--url", f"http://prometheus:{WEB_PASSWORD}@127.0.0.1:{port}/"),
            capture_output=True, text=True, timeout=60, env=env(),
        )  # fmt: skip
        outputs += [report.stdout, report.stderr]
    finally:
        server.stop()
        redis.stop()
    outputs.append(server.log())
    assert "level=debug" in outputs[-1], "debug logs were searched too"

    # Help, check-config, and mistakes made with the passwords in the arguments.
    config = workdir / "cachewatch.yml"
    config.write_text(
        f"redis:\n  addr: redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0\n"
        f"  password: {REDIS_PASSWORD}\n"
    )
    runs = [cachewatch("--help")]
    runs += [cachewatch(name, "--help") for name in COMMANDS]
    runs += [
        cachewatch("check-config", str(config)),
        cachewatch("serve", "--redis.addr", f"redis://u:{REDIS_PASSWORD}@127.0.0.1:70000/0"),
        cachewatch("serve", "--redis.addr", f"rediss://:{REDIS_PASSWORD}@[::1:6379/0"),
        cachewatch("serve", "--probe.config.file", str(probe), "--redis.password", "x",
                   "--redis.password-file", str(workdir / "redis.password")),
        cachewatch("report", "--url", f"http://prometheus:{WEB_PASSWORD}@127.0.0.1:1/"),
        cachewatch("alerts", "list", "--alertmanager.url",
                   f"http://admin:{ALERTMANAGER_PASSWORD}@127.0.0.1:1"),
        cachewatch("alerts", "silences", "--alertmanager.url",
                   f"http://admin:{ALERTMANAGER_PASSWORD}@not a host"),
        cachewatch("generate", "--output", str(workdir / "generated")),
    ]  # fmt: skip
    for run in runs:
        done = subprocess.run(
            run, capture_output=True, text=True, timeout=60,
            env=env(CACHEWATCH_REDIS_PASSWORD=REDIS_PASSWORD),
        )  # fmt: skip
        outputs += [done.stdout, done.stderr]
    assert "<secret>" in "\n".join(outputs), "check-config showed the masked password"
    generated = [p for p in (workdir / "generated").rglob("*") if p.is_file()]
    assert len(generated) >= 5, "generate wrote the rules and dashboards"
    outputs += [p.read_text(errors="replace") for p in generated]

    everything = "\n".join(outputs)
    assert len(everything) > 20_000  # real output was searched
    for secret in SECRETS:
        assert secret not in everything, f"a password leaked: {secret[:6]}..."


def test_alerts_commands_against_a_real_alertmanager_with_an_smtp_password(
    workdir: Path,
) -> None:
    """The bundled Alertmanager configuration, run for real with its SMTP password in a
    file and a real SMTP server as smarthost: the alerts commands work, and neither their
    output nor Alertmanager's own answers to them carry the SMTP password."""
    outputs: list[str] = []
    with smtp_server() as (smtp_port, _), webhook_server() as (webhook_port, _):
        password = workdir / "smtp_password"
        password.write_text(SMTP_PASSWORD)
        am_dir = workdir / "alertmanager"
        am_port = free_port()
        config = stack.render_alertmanager(
            workdir,
            smtp=f"127.0.0.1:{smtp_port}",
            webhook_url=f"http://127.0.0.1:{webhook_port}/alertmanager",
            password_file=password,
        )
        url = f"http://127.0.0.1:{am_port}"
        alertmanager = ManagedProcess(
            [require_binary("prometheus-alertmanager"), f"--config.file={config}",
             f"--storage.path={am_dir / 'data'}", f"--web.listen-address=127.0.0.1:{am_port}",
             "--cluster.listen-address=", f"--web.external-url={url}"],
            am_port, am_dir,
        ).start(timeout=20)  # fmt: skip
        try:
            for action in (
                ["ack", "CacheHitRatioLow", "--cache", "sessions", "--comment", "looking"],
                ["silences"],
                ["list"],
            ):
                done = subprocess.run(
                    cachewatch("alerts", *action, "--alertmanager.url", url),
                    capture_output=True, text=True, timeout=60, env=env(),
                )  # fmt: skip
                assert done.returncode == 0, done.stderr
                outputs += [done.stdout, done.stderr]
            status = requests.get(f"{url}/api/v2/status", timeout=10).text
            assert "smtp_auth_password_file" in status  # the password itself is in a file
            outputs.append(status)
        finally:
            alertmanager.stop()
        outputs.append(alertmanager.log())
    assert "acknowledged CacheHitRatioLow cache=sessions" in outputs[0]
    assert "CacheHitRatioLow" in outputs[2]  # the silence is listed
    everything = "\n".join(outputs)
    assert SMTP_PASSWORD not in everything
