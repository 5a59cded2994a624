"""A throwaway certificate authority for the TLS tests, made with the real openssl tool."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from .servers import require_binary


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path
    stranger_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(
        [require_binary("openssl"), *args], cwd=cwd, check=True, capture_output=True, timeout=30
    )


def _key_and_csr(name: str, subject: str, cwd: Path) -> None:
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=cwd,
    )  # fmt: skip


def _self_signed(name: str, subject: str, cwd: Path) -> None:
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2", "-subj", subject, cwd=cwd,
    )  # fmt: skip


def _sign(name: str, extensions: str, cwd: Path) -> None:
    (cwd / f"{name}.ext").write_text(extensions)
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext",
        cwd=cwd,
    )  # fmt: skip


def make_pki(directory: Path) -> Pki:
    """A CA, a server certificate for 127.0.0.1/localhost, a client certificate signed by the
    CA and a self-signed 'stranger' client certificate that the CA does not vouch for."""
    _self_signed("ca", "/CN=cachewatch test CA", directory)
    _key_and_csr("server", "/CN=localhost", directory)
    _sign(
        "server",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        directory,
    )
    _key_and_csr("client", "/CN=prometheus", directory)
    _sign("client", "extendedKeyUsage=clientAuth\n", directory)
    _self_signed("stranger", "/CN=stranger", directory)
    d = directory
    return Pki(
        d / "ca.crt", d / "server.crt", d / "server.key", d / "client.crt", d / "client.key",
        d / "stranger.crt", d / "stranger.key",
    )  # fmt: skip
