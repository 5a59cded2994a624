"""Access control: the exporter-toolkit web configuration (TLS, client certificates, basic auth)."""

from __future__ import annotations

import base64
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import requests

from cachewatch import Exporter
from cachewatch.cli import main
from cachewatch.config.webconfig import WebConfigError, load_web_config
from cachewatch.web import auth
from cachewatch.web.routes import make_wsgi_app
from cachewatch.web.server import HttpServer, serve

from .pki import Pki, make_pki
from .servers import free_port, wait_for_port

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def password_hash() -> str:
    return bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "web.yml"
    path.write_text(text)
    return str(path)


@pytest.fixture
def served(exporter: Exporter) -> Iterator[list[HttpServer]]:
    servers: list[HttpServer] = []
    yield servers
    for server in servers:
        server.shutdown()


def start(served: list[HttpServer], exporter: Exporter, web_config_path: str) -> HttpServer:
    server = serve(make_wsgi_app(exporter), "127.0.0.1", 0, load_web_config(web_config_path))
    served.append(server)
    return server


def test_basic_auth_requires_the_right_user_and_password(
    tmp_path: Path, exporter: Exporter, served: list[HttpServer], password_hash: str
) -> None:
    path = write(tmp_path, f"basic_auth_users:\n  prometheus: '{password_hash}'\n")
    server = start(served, exporter, path)
    url = f"http://127.0.0.1:{server.port}"
    anonymous = requests.get(f"{url}/metrics", timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert "cache_gets_total" not in anonymous.text
    for user, password in [("prometheus", "wrong"), ("nobody", PASSWORD), ("", "")]:
        response = requests.get(f"{url}/metrics", auth=(user, password), timeout=10)
        assert response.status_code == 401, (user, password)
    for header in ["Basic", "Basic !!!", "Bearer abc", "Basic " + "A" * 5000, "Basic dXNlcg=="]:
        response = requests.get(f"{url}/health", headers={"Authorization": header}, timeout=10)
        assert response.status_code == 401, header
    ok = requests.get(f"{url}/metrics", auth=("prometheus", PASSWORD), timeout=10)
    assert ok.status_code == 200
    assert "cachewatch_build_info" in ok.text
    # Unknown paths stay hidden behind authentication, then are 404 as usual.
    assert requests.get(f"{url}/nowhere", timeout=10).status_code == 401
    known = requests.get(f"{url}/nowhere", auth=("prometheus", PASSWORD), timeout=10)
    assert known.status_code == 404


def test_verified_credentials_are_cached_without_keeping_the_password(
    password_hash: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bytes] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(password)
        return real(password, hashed)

    monkeypatch.setattr(auth.bcrypt, "checkpw", counting)
    checker = auth.BasicAuth({"prometheus": password_hash.encode()})
    good = "Basic " + base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()
    bad = "Basic " + base64.b64encode(b"prometheus:nope").decode()
    for _ in range(20):
        assert checker.check(good) == "prometheus"
        assert checker.check(bad) is None
    assert len(calls) == 2  # one bcrypt per distinct credential, not per scrape
    cached = b"".join(checker._cache)
    assert PASSWORD.encode() not in cached


def test_tls_serves_https_and_refuses_plain_http(
    tmp_path: Path, exporter: Exporter, served: list[HttpServer], pki: Pki
) -> None:
    path = write(
        tmp_path,
        f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n",
    )
    server = start(served, exporter, path)
    assert server.scheme == "https"
    # A client that connects and never starts its handshake blocks nobody.
    with socket.create_connection(("127.0.0.1", server.port)):
        response = requests.get(
            f"https://127.0.0.1:{server.port}/metrics", verify=str(pki.ca_cert), timeout=10
        )
    assert response.status_code == 200
    assert "cachewatch_build_info" in response.text
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{server.port}/metrics", timeout=10)
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"https://127.0.0.1:{server.port}/metrics", timeout=10)  # unknown CA
    # Still serving after the failed handshakes.
    again = requests.get(f"https://127.0.0.1:{server.port}/health", verify=str(pki.ca_cert))
    assert again.status_code == 200


def test_client_certificates_and_basic_auth_together(
    tmp_path: Path, exporter: Exporter, served: list[HttpServer], pki: Pki, password_hash: str
) -> None:
    # Relative paths are resolved against the web configuration file's directory.
    for name in ("server.crt", "server.key", "ca.crt"):
        (tmp_path / name).write_bytes((pki.ca_cert.parent / name).read_bytes())
    path = write(
        tmp_path,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        "  client_ca_file: ca.crt\n  client_auth_type: RequireAndVerifyClientCert\n"
        f"basic_auth_users:\n  prometheus: {password_hash}\n",
    )
    server = start(served, exporter, path)
    url = f"https://127.0.0.1:{server.port}/metrics"
    ca = str(pki.ca_cert)
    client = (str(pki.client_cert), str(pki.client_key))
    stranger = (str(pki.stranger_cert), str(pki.stranger_key))
    for cert in (None, stranger):
        with pytest.raises(requests.exceptions.RequestException):
            requests.get(url, verify=ca, cert=cert, auth=("prometheus", PASSWORD), timeout=10)
    assert requests.get(url, verify=ca, cert=client, timeout=10).status_code == 401
    response = requests.get(url, verify=ca, cert=client, auth=("prometheus", PASSWORD))
    assert response.status_code == 200


def test_tls_only_negotiates_modern_versions(
    tmp_path: Path, exporter: Exporter, served: list[HttpServer], pki: Pki
) -> None:
    path = write(
        tmp_path,
        f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n"
        "  min_version: TLS13\n",
    )
    server = start(served, exporter, path)
    old = ssl.create_default_context(cafile=str(pki.ca_cert))
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        pytest.raises(ssl.SSLError),
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
        old.wrap_socket(raw, server_hostname="localhost"),
    ):
        pass
    modern = ssl.create_default_context(cafile=str(pki.ca_cert))
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
        modern.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() == "TLSv1.3"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("basic_auth_users:\n  prometheus: hunter2-plain\n", "not a bcrypt hash"),
        ("basic_auth_user:\n  prometheus: x\n", "unknown field"),
        ("tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\n",
         "cannot load cert_file"),
        ("tls_server_config:\n  cert_file: a.crt\n", "missing key_file"),
        ("tls_server_config: [1, 2]\n", "must be a mapping"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Maybe\n",
         "client_auth_type"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n",
         "client_ca_file is set but client_auth_type is NoClientCert"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS10\n",
         "min_version"),
        ("tls_server_config:\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n", "not supported"),
        ("http_server_config:\n  headers:\n    Set-Cookie: a\n", "not allowed"),
        ("{{{ not yaml", "not valid YAML"),
    ],
)  # fmt: skip
def test_invalid_web_config_is_one_line_naming_the_flag_and_exit_2(
    tmp_path: Path, content: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, content)
    with pytest.raises(WebConfigError, match=expected):
        load_web_config(path)
    code = main(["demo", "--web.config.file", path, "--web.listen-address", "127.0.0.1:0"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith("cachewatch: error: --web.config.file:")
    assert expected in err
    assert "hunter2" not in err


def test_missing_web_config_file_in_a_real_process(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cachewatch.cli", "demo", "--duration", "1s"],
        env={"CACHEWATCH_WEB_CONFIG_FILE": str(tmp_path / "absent.yml"), "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "--web.config.file" in result.stderr and "absent.yml" in result.stderr
    assert "Traceback" not in result.stderr


def test_extra_response_headers(
    tmp_path: Path, exporter: Exporter, served: list[HttpServer]
) -> None:
    path = write(
        tmp_path,
        "http_server_config:\n  headers:\n    Strict-Transport-Security: max-age=31536000\n",
    )
    server = start(served, exporter, path)
    response = requests.get(f"http://127.0.0.1:{server.port}/health", timeout=10)
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_demo_serves_https_with_basic_auth_from_the_web_config_flag(
    tmp_path: Path, pki: Pki, password_hash: str
) -> None:
    path = write(
        tmp_path,
        f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n"
        f"basic_auth_users:\n  prometheus: '{password_hash}'\n",
    )
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cachewatch.cli", "demo", "--web.config.file", path,
         "--web.listen-address", f"127.0.0.1:{port}", "--duration", "30s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for_port(port, timeout=30)
        url = f"https://127.0.0.1:{port}/metrics"
        denied = requests.get(url, verify=str(pki.ca_cert), timeout=10)
        allowed = requests.get(
            url, verify=str(pki.ca_cert), auth=("prometheus", PASSWORD), timeout=10
        )
        process.terminate()
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    assert denied.status_code == 401
    assert allowed.status_code == 200 and "cache_gets_total" in allowed.text
    assert f"https://127.0.0.1:{port}/metrics" in out
    assert process.returncode == 0, err
