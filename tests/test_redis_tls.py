"""rediss://: server verified with a CA file, client certificate required by the server."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cachewatch.config import RedisSettings
from cachewatch.config.redisurl import parse_redis_address
from cachewatch.sources.redis import RedisSource

from .servers import ManagedProcess, free_port, require_binary


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run([require_binary("openssl"), *args], cwd=cwd, check=True, capture_output=True,
                   timeout=60)  # fmt: skip


def _certificates(directory: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
             "-keyout", "ca.key", "-out", "ca.crt", cwd=directory)  # fmt: skip
    (directory / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=directory)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-extfile", "san.cnf", "-out", f"{name}.crt",
                 cwd=directory)  # fmt: skip


@pytest.fixture
def tls_redis() -> Iterator[tuple[int, Path]]:
    with tempfile.TemporaryDirectory(prefix="cachewatch-tls-") as tmp:
        directory = Path(tmp)
        _certificates(directory)
        port = free_port()
        server = ManagedProcess(
            [require_binary("redis-server"), "--port", "0", "--tls-port", str(port),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp,
             "--tls-cert-file", "server.crt", "--tls-key-file", "server.key",
             "--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "yes"],
            port, directory,
        ).start()  # fmt: skip
        try:
            yield port, directory
        finally:
            server.stop()


def _settings(port: int, directory: Path, *, client_cert: bool) -> RedisSettings:
    return RedisSettings(
        address=parse_redis_address(f"rediss://127.0.0.1:{port}/0"),
        tls_ca_file=str(directory / "ca.crt"),
        tls_cert_file=str(directory / "client.crt") if client_cert else None,
        tls_key_file=str(directory / "client.key") if client_cert else None,
        connect_timeout=2.0,
        socket_timeout=2.0,
    )


def test_tls_with_ca_and_client_certificate(tls_redis: tuple[int, Path]) -> None:
    port, directory = tls_redis
    source = RedisSource(_settings(port, directory, client_cert=True), start_census=False)
    try:
        snapshot = source.poll()
        assert snapshot.up, snapshot.error
    finally:
        source.close()
    refused = RedisSource(_settings(port, directory, client_cert=False), start_census=False)
    try:
        snapshot = refused.poll()
        assert not snapshot.up and snapshot.error
    finally:
        refused.close()
