"""/probe?target=NAME: only targets named in the probe configuration, with their credentials
from files; anything else is refused before any connection is made."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import requests

from cachewatch import Exporter
from cachewatch.cli import main
from cachewatch.config.probe import ProbeConfigError, load_probe_config
from cachewatch.config.webconfig import load_web_config
from cachewatch.sources.probe import ProbeTargets
from cachewatch.web.probe import ProbeApp
from cachewatch.web.routes import make_wsgi_app
from cachewatch.web.server import HttpServer, serve

from .servers import LOOPBACK, RedisServer, free_port, redis_server, require_binary, wait_for_port
from .test_redis_tls import tls_redis as tls_redis

PASSWORD = "probe-pw-7a1c9e"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def secured_redis() -> Iterator[RedisServer]:
    with redis_server(extra=["--requirepass", PASSWORD]) as server:
        yield server


def probe_file(tmp_path: Path, redis_port: int, extra: str = "") -> Path:
    (tmp_path / "redis.password").write_text(PASSWORD + "\n")
    path = tmp_path / "probe.yml"
    path.write_text(
        "targets:\n"
        "  primary:\n"
        f"    address: redis://{LOOPBACK}:{redis_port}/0\n"
        "    password_file: redis.password\n"
        "    caches:\n"
        "      sessions: 'session:'\n" + extra
    )
    return path


@pytest.fixture
def probing(tmp_path: Path, exporter: Exporter, secured_redis: RedisServer) -> Iterator[HttpServer]:
    probe_config = load_probe_config(str(probe_file(tmp_path, secured_redis.port)))
    prober = ProbeApp(ProbeTargets(probe_config))
    exporter.add_wsgi_route("/probe", "probe", prober)
    server = serve(make_wsgi_app(exporter), LOOPBACK, 0)
    yield server
    server.shutdown()
    prober.close()


def test_a_configured_target_is_scraped_with_its_password_from_a_file(
    probing: HttpServer, secured_redis: RedisServer
) -> None:
    client = socket.create_connection((LOOPBACK, secured_redis.port))
    client.sendall(
        f"AUTH {PASSWORD}\r\nSET session:1 a\r\nSET session:2 b\r\nSET other c\r\n".encode()
    )
    time.sleep(0.2)
    client.close()
    response = requests.get(f"http://{LOOPBACK}:{probing.port}/probe?target=primary", timeout=10)
    assert response.status_code == 200
    assert "\nredis_up 1.0" in response.text
    assert 'cachewatch_source_up{source="redis"} 1.0' in response.text
    assert PASSWORD not in response.text
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # The census runs beside the scrapes: the logical cache appears within a few probes.
    deadline = time.monotonic() + 15
    while 'cache_size{cache="sessions"} 2.0' not in response.text:
        assert time.monotonic() < deadline, response.text[-2000:]
        time.sleep(0.3)
        response = requests.get(f"http://{LOOPBACK}:{probing.port}/probe?target=primary")
    # OpenMetrics works through /probe as through /metrics.
    om = requests.get(
        f"http://{LOOPBACK}:{probing.port}/probe?target=primary",
        headers={"Accept": "application/openmetrics-text; version=1.0.0"},
        timeout=10,
    )
    assert om.headers["Content-Type"].startswith("application/openmetrics-text")
    assert om.text.endswith("# EOF\n")


def test_unknown_targets_are_refused_without_any_connection(probing: HttpServer) -> None:
    with socket.socket() as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        base = f"http://{LOOPBACK}:{probing.port}/probe"
        for query, expected in [
            (f"?target={LOOPBACK}:{port}", 404),
            (f"?target=redis://{LOOPBACK}:{port}/0", 404),
            (f"?target=redis%3A%2F%2F{LOOPBACK}%3A{port}", 404),
            (f"?target=localhost:{port}", 404),
            ("?target=Primary", 404),
            ("?target=primary&target=primary", 400),
            ("?target=", 400),
            ("", 400),
            (f"?host={LOOPBACK}&port={port}", 400),
        ]:
            response = requests.get(base + query, timeout=10)
            assert response.status_code == expected, query
            assert str(port) not in response.text  # the name is never echoed
        listener.settimeout(1.0)
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody ever connected


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (f"targets:\n  a:\n    address: redis://:{PASSWORD}@127.0.0.1:6379/0\n",
         "no password in the address"),
        ("allowed_schemes: [rediss]\ntargets:\n  a:\n    address: redis://127.0.0.1:6379/0\n",
         "scheme redis is not in allowed_schemes"),
        ("allowed_schemes: [http]\n", "'http' is not one of redis, rediss"),
        ("targets:\n  a:\n    address: http://127.0.0.1/\n", "scheme must be redis or rediss"),
        ("targets:\n  a:\n    address: redis://h:1/0\n    password: x\n", "unknown field"),
        ("targets:\n  a:\n    address: redis://h:1/0\n    password_file: /nonexistent\n",
         "cannot read"),
        ("targets:\n  'a b':\n    address: redis://h:1/0\n", "target name"),
        ("targets:\n  a: {}\n", "address is required"),
        ("targets:\n  a:\n    address: redis://h:1/0\n    tls_ca_file: /etc/hostname\n",
         "TLS files need a rediss:// address"),
        ("targets:\n  a:\n    address: redis://h:1/0\n    caches: {'bad name': 'x:'}\n",
         "invalid cache name"),
        ("targets:\n  a:\n    address: redis://h:1/0\n    socket_timeout: soon\n",
         "socket_timeout"),
        ("targets: [a, b]\n", "targets must be a mapping"),
    ],
)  # fmt: skip
def test_invalid_probe_configuration_is_one_line_and_exit_2(
    tmp_path: Path, content: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "probe.yml"
    path.write_text(content)
    with pytest.raises(ProbeConfigError, match=re.escape(expected)):
        load_probe_config(str(path))
    code = main(["serve", "--probe.config.file", str(path), "--web.listen-address", "127.0.0.1:0"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("cachewatch: error: --probe.config.file:")
    assert expected in err
    assert PASSWORD not in err


def test_serve_with_only_probe_targets_in_a_real_process(
    tmp_path: Path, secured_redis: RedisServer
) -> None:
    path = probe_file(tmp_path, secured_redis.port)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cachewatch.cli", "serve", "--probe.config.file", str(path),
         "--web.listen-address", f"{LOOPBACK}:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for_port(port, timeout=30)
        probed = requests.get(f"http://{LOOPBACK}:{port}/probe?target=primary", timeout=10)
        own = requests.get(f"http://{LOOPBACK}:{port}/metrics", timeout=10)
        landing = requests.get(f"http://{LOOPBACK}:{port}/", timeout=10)
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
    assert probed.status_code == 200 and "\nredis_up 1.0" in probed.text
    assert own.status_code == 200 and "redis_up" not in own.text  # no --redis.addr: no source
    assert 'href="probe"' in landing.text
    for text in (out, err, probed.text, own.text):
        assert PASSWORD not in text


def test_the_documented_relabelling_example_is_valid_prometheus_configuration(
    tmp_path: Path,
) -> None:
    docs = (ROOT / "docs" / "security.md").read_text()
    match = re.search(r"<!-- probe-scrape-config -->\n```yaml\n(.*?)```", docs, re.S)
    assert match, "docs/security.md lost its /probe scrape configuration example"
    config = tmp_path / "prometheus.yml"
    config.write_text(match.group(1))
    result = subprocess.run(
        [require_binary("promtool"), "check", "config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_probe_sits_behind_basic_auth_and_refuses_before_connecting(
    tmp_path: Path, exporter: Exporter, secured_redis: RedisServer
) -> None:
    hashed = bcrypt.hashpw(b"scrape-pw", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  prometheus: {hashed}\n")
    probe_config = load_probe_config(str(probe_file(tmp_path, secured_redis.port)))
    prober = ProbeApp(ProbeTargets(probe_config))
    exporter.add_wsgi_route("/probe", "probe", prober)
    server = serve(make_wsgi_app(exporter), LOOPBACK, 0, load_web_config(str(web)))
    stats = socket.create_connection((LOOPBACK, secured_redis.port))

    def connections_received() -> int:
        stats.sendall(f"AUTH {PASSWORD}\r\nINFO stats\r\n".encode())
        time.sleep(0.2)
        text = stats.recv(65536).decode()
        return int(text.split("total_connections_received:")[1].split()[0])

    try:
        before = connections_received()
        url = f"http://{LOOPBACK}:{server.port}/probe?target=primary"
        for auth in (None, ("prometheus", "wrong")):
            assert requests.get(url, auth=auth, timeout=10).status_code == 401
        assert connections_received() == before  # refused before any connection to Redis
        ok = requests.get(url, auth=("prometheus", "scrape-pw"), timeout=10)
        assert ok.status_code == 200 and "\nredis_up 1.0" in ok.text
        assert connections_received() > before
    finally:
        stats.close()
        server.shutdown()
        prober.close()


def test_a_tls_target_with_a_client_certificate_and_only_rediss_allowed(
    tmp_path: Path, exporter: Exporter, tls_redis: tuple[int, Path]
) -> None:
    port, certificates = tls_redis
    config = tmp_path / "probe.yml"
    config.write_text(
        "allowed_schemes: [rediss]\n"
        "targets:\n"
        "  secure:\n"
        f"    address: rediss://127.0.0.1:{port}/0\n"
        f"    tls_ca_file: {certificates / 'ca.crt'}\n"
        f"    tls_cert_file: {certificates / 'client.crt'}\n"
        f"    tls_key_file: {certificates / 'client.key'}\n"
        "  no-client-cert:\n"
        f"    address: rediss://127.0.0.1:{port}/0\n"
        f"    tls_ca_file: {certificates / 'ca.crt'}\n"
    )
    prober = ProbeApp(ProbeTargets(load_probe_config(str(config))))
    exporter.add_wsgi_route("/probe", "probe", prober)
    server = serve(make_wsgi_app(exporter), LOOPBACK, 0)
    try:
        base = f"http://{LOOPBACK}:{server.port}/probe?target="
        secure = requests.get(base + "secure", timeout=10)
        refused = requests.get(base + "no-client-cert", timeout=10)
    finally:
        server.shutdown()
        prober.close()
    assert secure.status_code == 200 and "\nredis_up 1.0" in secure.text
    assert refused.status_code == 200 and "\nredis_up 0.0" in refused.text
